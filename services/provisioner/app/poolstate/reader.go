// Package poolstate reports, at each scrape of /metrics, what PostgreSQL
// holds about the staging pools (desired and current sessions, status and
// the cause of a shortfall) and about the agent and server pools (members
// and free capacity), as Prometheus gauges.
//
// The numbers are read when Prometheus asks, not kept from the staging
// reconciler's passes: they are as fresh as the scrape, a deleted staging
// config or pool disappears at once instead of lingering as a stale
// series, and no replica needs to have reconciled a pool to report it.
// Every provisioner replica reports the same deployment-wide values, so
// aggregate them with max (or avg) by their labels, never sum.
package poolstate

import "context"

// Reader reads the state the gauges report (adapters/postgres).
type Reader interface {
	// StagingPools returns every live staging config with its sessions.
	StagingPools(ctx context.Context) ([]StagingPool, error)
	// Pools returns the members and free capacity of each pool, by zone
	// of its members; agents in no pool form the pool "". A pool without
	// members is returned once, with zone "".
	Pools(ctx context.Context) ([]Pool, error)
}

// StagingPool is one live staging config and its sessions. Its zone and
// workspace identify it: one live config per pair.
type StagingPool struct {
	Zone      string `db:"zone"`
	Workspace string `db:"workspace"`
	Desired   int    `db:"desired_sessions"`
	// Staged are the sessions staged and waiting (current_sessions).
	Staged int `db:"staged"`
	// Provisioning are the sessions of the pool being made.
	Provisioning int `db:"provisioning"`
	// Status is ok, filling or shortfall.
	Status    string `db:"status"`
	LastError string `db:"last_error"`
}

// Pool is the members of one pool in one zone and their capacity.
type Pool struct {
	Name string `db:"pool"`
	// Type is docker_agent or server.
	Type string `db:"type"`
	Zone string `db:"zone"`
	// Members are the enabled agents or servers; Disabled the others.
	// Capacity counts enabled members only.
	Members  int `db:"members"`
	Disabled int `db:"disabled"`
	// Sessions are the live sessions on the members.
	Sessions int `db:"sessions"`
	// Cores, MemoryMB and their free parts (what the live sessions have
	// not reserved) are an agent pool's capacity.
	Cores        float64 `db:"cores"`
	FreeCores    float64 `db:"free_cores"`
	MemoryMB     int64   `db:"memory_mb"`
	FreeMemoryMB int64   `db:"free_memory_mb"`
	// Slots and FreeSlots are a server pool's: its servers'
	// max_sessions and what their live sessions leave.
	Slots     int `db:"slots"`
	FreeSlots int `db:"free_slots"`
}
