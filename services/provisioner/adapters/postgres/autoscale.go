package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

var _ autoscale.Store = (*Store)(nil)

// ListAutoscaleConfigs returns the ids of every autoscale config.
func (s *Store) ListAutoscaleConfigs(ctx context.Context) ([]string, error) {
	var ids []string
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM autoscale_configs ORDER BY name`); err != nil {
		return nil, fmt.Errorf("listing autoscale configs: %w", err)
	}
	return ids, nil
}

// autoscaleRow is an autoscale config as the decision reads it.
type autoscaleRow struct {
	ID                string          `db:"id"`
	Name              string          `db:"name"`
	PoolID            string          `db:"pool_id"`
	ZoneID            string          `db:"zone_id"`
	Enabled           bool            `db:"enabled"`
	Aggressive        bool            `db:"aggressive_scaling"`
	BackoffSeconds    float64         `db:"backoff_seconds"`
	StandbyCores      float64         `db:"standby_cores"`
	StandbyMemoryMB   int64           `db:"standby_memory_mb"`
	StandbyGPUs       int             `db:"standby_gpus"`
	CoresOverride     sql.NullFloat64 `db:"agent_cores_override"`
	MemoryMBOverride  sql.NullInt64   `db:"agent_memory_mb_override"`
	MinAgents         int             `db:"min_agents"`
	MaxAgents         int             `db:"max_agents"`
	VMProviderID      string          `db:"vm_provider_id"`
	LastScaleAt       sql.NullTime    `db:"last_scale_at"`
	LastErrorAt       sql.NullTime    `db:"last_error_at"`
	Now               time.Time       `db:"now"`
	VMProviderName    string          `db:"vm_name"`
	VMProviderType    string          `db:"vm_type"`
	VMProviderSetting json.RawMessage `db:"vm_settings"`
}

// Decide takes one decision for autoscale config id under its row lock
// (SKIP LOCKED: ErrBusy when another replica holds it) and records it.
func (s *Store) Decide(ctx context.Context, id string, in autoscale.DecideInput) (domain.ScaleDecision, error) {
	var d domain.ScaleDecision
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var c autoscaleRow
		err := tx.GetContext(ctx, &c, `SELECT ac.id, ac.name, ac.pool_id, ac.zone_id, ac.enabled, ac.aggressive_scaling,
				EXTRACT(EPOCH FROM ac.downscale_backoff)::float8 AS backoff_seconds,
				ac.standby_cores::float8 AS standby_cores, ac.standby_memory_mb, ac.standby_gpus,
				ac.agent_cores_override::float8 AS agent_cores_override, ac.agent_memory_mb_override,
				ac.min_agents, ac.max_agents, ac.vm_provider_id, ac.last_scale_at, ac.last_error_at, now() AS now,
				vp.name AS vm_name, vp.type AS vm_type, vp.settings AS vm_settings
			FROM autoscale_configs ac JOIN vm_providers vp ON vp.id = ac.vm_provider_id
			WHERE ac.id = $1 FOR UPDATE OF ac SKIP LOCKED`, id)
		if errors.Is(err, sql.ErrNoRows) {
			// Locked by another replica, or deleted meanwhile.
			return autoscale.ErrBusy
		}
		if err != nil {
			return fmt.Errorf("locking autoscale config %s: %w", id, err)
		}
		size, gpus, err := in.Size(autoscale.ProviderConfig{ID: c.VMProviderID, Name: c.VMProviderName, Type: c.VMProviderType,
			Settings: c.VMProviderSetting})
		if err != nil {
			err = fmt.Errorf("VM provider %s: %w", c.VMProviderName, err)
			d = domain.ScaleDecision{Action: domain.ScaleNone, Reason: err.Error()}
			return s.recordDecision(ctx, tx, c, d, err)
		}
		if c.CoresOverride.Valid {
			size.MilliCores = domain.MilliCores(c.CoresOverride.Float64)
		}
		if c.MemoryMBOverride.Valid {
			size.MemoryMB = c.MemoryMBOverride.Int64
		}
		agents, err := scaleAgents(ctx, tx, c, in.Outages)
		if err != nil {
			return err
		}
		state := domain.ScaleState{
			Config: domain.ScaleConfig{Enabled: c.Enabled, Standby: domain.Resources{MilliCores: domain.MilliCores(c.StandbyCores),
				MemoryMB: c.StandbyMemoryMB}, StandbyGPUs: c.StandbyGPUs, MinAgents: c.MinAgents, MaxAgents: c.MaxAgents,
				Backoff: time.Duration(c.BackoffSeconds * float64(time.Second)), Aggressive: c.Aggressive, AgentSize: size, AgentGPUs: gpus},
			Agents: agents, LastScaleAt: c.LastScaleAt.Time, FailedAt: c.LastErrorAt.Time, RetryAfter: in.RetryAfter, Now: c.Now,
		}
		d = in.Decide(state)
		if err := s.applyDecision(ctx, tx, c, d, size, gpus); err != nil {
			return err
		}
		return s.recordDecision(ctx, tx, c, d, nil)
	})
	return d, err
}

// scaleAgents reads the agents of c's pool in its zone with their load.
func scaleAgents(ctx context.Context, tx *sqlx.Tx, c autoscaleRow, outages autoscale.EngineOutages) ([]domain.ScaleAgent, error) {
	var rows []struct {
		Name         string    `db:"name"`
		Lifecycle    string    `db:"lifecycle"`
		Since        time.Time `db:"lifecycle_at"`
		Autoscaled   bool      `db:"autoscaled"`
		Enabled      bool      `db:"enabled"`
		Endpoint     string    `db:"docker_endpoint"`
		Cores        float64   `db:"cores"`
		MemoryMB     int64     `db:"memory_mb"`
		GPUs         int       `db:"gpus"`
		UsedCores    float64   `db:"used_cores"`
		UsedMemoryMB int64     `db:"used_memory_mb"`
		StagedCores  float64   `db:"staged_cores"`
		StagedMemory int64     `db:"staged_memory_mb"`
		Sessions     int       `db:"sessions"`
		UserSessions int       `db:"user_sessions"`
	}
	err := tx.SelectContext(ctx, &rows, `SELECT a.name, a.lifecycle, a.lifecycle_at, a.autoscale_config_id IS NOT DISTINCT FROM $3 AS autoscaled,
			a.enabled, a.docker_endpoint, a.cores::float8 AS cores, a.memory_mb, a.gpus,
			COALESCE(load.cores, 0)::float8 AS used_cores, COALESCE(load.memory_mb, 0) AS used_memory_mb,
			COALESCE(load.staged_cores, 0)::float8 AS staged_cores, COALESCE(load.staged_memory_mb, 0) AS staged_memory_mb,
			load.sessions, load.user_sessions
		FROM agents a
		CROSS JOIN LATERAL (
			SELECT count(*) AS sessions, count(*) FILTER (WHERE s.user_id IS NOT NULL) AS user_sessions,
				sum(s.cores) AS cores, sum(s.memory_mb) AS memory_mb,
				sum(s.cores) FILTER (WHERE s.user_id IS NULL) AS staged_cores,
				sum(s.memory_mb) FILTER (WHERE s.user_id IS NULL) AS staged_memory_mb
			FROM sessions s WHERE s.agent_id = a.id AND s.status NOT IN ('destroyed', 'failed')
		) load
		WHERE a.pool_id = $1 AND a.zone_id = $2 AND a.lifecycle <> 'deleted'
			AND (a.enabled OR a.autoscale_config_id IS NOT DISTINCT FROM $3)
		ORDER BY a.name`, c.PoolID, c.ZoneID, c.ID)
	if err != nil {
		return nil, fmt.Errorf("reading the agents of autoscale config %s: %w", c.Name, err)
	}
	agents := make([]domain.ScaleAgent, len(rows))
	for i, r := range rows {
		down, downSince := !r.Enabled, time.Time{}
		if outages != nil && r.Endpoint != "" {
			if o := outages.Outage(r.Endpoint); o != nil {
				down, downSince = true, o.Since
			}
		}
		agents[i] = domain.ScaleAgent{Name: r.Name, Lifecycle: r.Lifecycle, Since: r.Since, Autoscaled: r.Autoscaled,
			Down: down, DownSince: downSince,
			Capacity:   domain.Resources{MilliCores: domain.MilliCores(r.Cores), MemoryMB: r.MemoryMB},
			Used:       domain.Resources{MilliCores: domain.MilliCores(r.UsedCores), MemoryMB: r.UsedMemoryMB},
			StagedUsed: domain.Resources{MilliCores: domain.MilliCores(r.StagedCores), MemoryMB: r.StagedMemory},
			GPUs:       r.GPUs, Sessions: r.Sessions, UserSessions: r.UserSessions}
	}
	return agents, nil
}

// applyDecision writes d's change of agents in tx, each agent's step
// announced (greenroom.agent.lifecycle) in the same transaction.
func (s *Store) applyDecision(ctx context.Context, tx *sqlx.Tx, c autoscaleRow, d domain.ScaleDecision, size domain.Resources, gpus int) error {
	// domain.DecideScale gives every decision its reason; should another
	// Decide give none, the action stands in, as each agent's
	// greenroom.agent.lifecycle must say why.
	reason := cmp.Or(d.Reason, string(d.Action))
	switch d.Action {
	case domain.ScaleUp:
		for range d.Count {
			name, err := agentName(c.Name)
			if err != nil {
				return err
			}
			// The agent exists from the decision on, not placeable
			// (provisioning) and with no endpoint yet: what the next
			// decision counts, and what a replica works on.
			var id string
			if err := tx.GetContext(ctx, &id, `INSERT INTO agents (id, name, zone_id, pool_id, docker_endpoint, cores, memory_mb, gpus,
					enabled, autoscale_config_id, vm_provider_id, lifecycle, lifecycle_at)
				VALUES (gen_random_uuid(), $1, $2, $3, '', $4, $5, $6, true, $7, $8, 'provisioning', now())
				RETURNING id`,
				name, c.ZoneID, c.PoolID, float64(size.MilliCores)/1000, size.MemoryMB, gpus, c.ID, c.VMProviderID); err != nil {
				return fmt.Errorf("recording a new agent of autoscale config %s: %w", c.Name, err)
			}
			if err := s.emitLifecycle(ctx, tx, lifecycleRow{ID: id, Name: name, Config: sql.NullString{String: c.Name, Valid: true}},
				"", domain.LifecycleProvisioning, reason); err != nil {
				return err
			}
		}
	case domain.ScaleDrain, domain.ScaleUndrain, domain.ScaleDelete:
		from, to := domain.LifecycleActive, domain.LifecycleDraining
		switch d.Action {
		case domain.ScaleUndrain:
			from, to = domain.LifecycleDraining, domain.LifecycleActive
		case domain.ScaleDelete:
			from, to = domain.LifecycleDraining, domain.LifecycleDeleting
		}
		a := lifecycleRow{Config: sql.NullString{String: c.Name, Valid: true}}
		err := tx.GetContext(ctx, &a, `UPDATE agents SET lifecycle = $3, lifecycle_at = now(), lifecycle_error = '', work_started_at = NULL, updated_at = now()
			WHERE name = $1 AND autoscale_config_id = $2 AND lifecycle = $4
			RETURNING id, name, machine_id, internal_address`, d.Agent, c.ID, to, from)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("agent %s of autoscale config %s is no longer %s", d.Agent, c.Name, from)
		}
		if err != nil {
			return fmt.Errorf("moving agent %s to %s: %w", d.Agent, to, err)
		}
		if err := s.emitLifecycle(ctx, tx, a, from, to, reason); err != nil {
			return err
		}
	}
	return nil
}

// lifecycleRow is what greenroom.agent.lifecycle says of an agent, read
// off its row (RETURNING) as the step left it.
type lifecycleRow struct {
	ID        string         `db:"id"`
	Name      string         `db:"name"`
	MachineID string         `db:"machine_id"`
	Address   string         `db:"internal_address"`
	Config    sql.NullString `db:"config_name"`
}

// emitLifecycle announces, in tx, that agent a went from one lifecycle
// to the next ("" from: a new agent) and why: the audit log's record of
// an autoscaled agent's life, written with the row change it announces.
func (s *Store) emitLifecycle(ctx context.Context, tx *sqlx.Tx, a lifecycleRow, from, to, reason string) error {
	err := s.emit(ctx, tx, events.TypeAgentLifecycle, events.AgentLifecycle{Agent: a.Name, AgentID: a.ID,
		AutoscaleConfig: a.Config.String, From: from, To: to, Reason: reason, MachineID: a.MachineID, Address: a.Address}, "")
	if err != nil {
		return fmt.Errorf("announcing agent %s %s: %w", a.Name, to, err)
	}
	return nil
}

// recordDecision writes what was decided (and why a decision could not be
// taken, failure) on the config; a change of agents is its last scale.
func (s *Store) recordDecision(ctx context.Context, tx *sqlx.Tx, c autoscaleRow, d domain.ScaleDecision, failure error) error {
	scaled := d.Action == domain.ScaleUp || d.Action == domain.ScaleDrain || d.Action == domain.ScaleUndrain
	var err error
	if failure != nil {
		_, err = tx.ExecContext(ctx, `UPDATE autoscale_configs SET last_decision = $2, last_decision_at = now(),
			last_error = $2, last_error_at = now() WHERE id = $1`, c.ID, failure.Error())
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE autoscale_configs SET last_decision = $2, last_decision_at = now(),
			last_scale_at = CASE WHEN $3 THEN now() ELSE last_scale_at END WHERE id = $1`, c.ID, d.String(), scaled)
	}
	if err != nil {
		return fmt.Errorf("recording the decision of autoscale config %s: %w", c.Name, err)
	}
	return nil
}

// nameUnsafe are the characters of a config's name that a DNS label (and
// a container name) cannot hold.
var nameUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// agentName names a new agent of config: the config's name made a DNS
// label, and 6 random hex digits, 63 characters at most.
func agentName(config string) (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	base := strings.Trim(nameUnsafe.ReplaceAllString(strings.ToLower(config), "-"), "-")
	base = strings.TrimRight(base[:min(len(base), 56)], "-")
	if base == "" {
		base = "agent"
	}
	return base + "-" + hex.EncodeToString(b), nil
}

// workRow is an agent being made or deleted, with its providers.
type workRow struct {
	AgentID     string          `db:"id"`
	Name        string          `db:"name"`
	Lifecycle   string          `db:"lifecycle"`
	Since       time.Time       `db:"lifecycle_at"`
	Started     time.Time       `db:"work_started_at"`
	MachineID   string          `db:"machine_id"`
	Endpoint    string          `db:"docker_endpoint"`
	Cores       float64         `db:"cores"`
	MemoryMB    int64           `db:"memory_mb"`
	GPUs        int             `db:"gpus"`
	ConfigID    sql.NullString  `db:"config_id"`
	ConfigName  sql.NullString  `db:"config_name"`
	VMID        string          `db:"vm_id"`
	VMName      string          `db:"vm_name"`
	VMType      string          `db:"vm_type"`
	VMSettings  json.RawMessage `db:"vm_settings"`
	VMSecrets   json.RawMessage `db:"vm_secrets"`
	CACert      string          `db:"tls_ca_cert"`
	CAKey       string          `db:"tls_ca_key"`
	ClientCert  string          `db:"tls_client_cert"`
	ClientKey   string          `db:"tls_client_key"`
	DNSID       sql.NullString  `db:"dns_id"`
	DNSName     sql.NullString  `db:"dns_name"`
	DNSType     sql.NullString  `db:"dns_type"`
	DNSSettings []byte          `db:"dns_settings"`
	DNSSecrets  []byte          `db:"dns_secrets"`
}

// ClaimWork leases to owner up to limit agents being made or deleted
// whose lease is free.
func (s *Store) ClaimWork(ctx context.Context, owner string, lease time.Duration, limit int) ([]autoscale.Work, error) {
	var rows []workRow
	err := s.db.SelectContext(ctx, &rows, `WITH claimed AS (
			UPDATE agents a SET work_owner = $1, work_lease_until = now() + $2::interval,
				work_started_at = COALESCE(a.work_started_at, now())
			WHERE a.id IN (
				SELECT id FROM agents
				WHERE lifecycle IN ('provisioning', 'deleting') AND vm_provider_id IS NOT NULL
					AND (work_lease_until IS NULL OR work_lease_until < now())
				ORDER BY lifecycle_at LIMIT $3 FOR UPDATE SKIP LOCKED)
			RETURNING a.*)
		SELECT c.id, c.name, c.lifecycle, c.lifecycle_at, c.work_started_at, c.machine_id, c.docker_endpoint, c.cores::float8 AS cores, c.memory_mb, c.gpus,
			ac.id AS config_id, ac.name AS config_name,
			vp.id AS vm_id, vp.name AS vm_name, vp.type AS vm_type, vp.settings AS vm_settings, vp.secrets AS vm_secrets,
			vp.tls_ca_cert, vp.tls_ca_key, vp.tls_client_cert, vp.tls_client_key,
			dp.id AS dns_id, dp.name AS dns_name, dp.type AS dns_type, dp.settings AS dns_settings, dp.secrets AS dns_secrets
		FROM claimed c
		JOIN vm_providers vp ON vp.id = c.vm_provider_id
		LEFT JOIN autoscale_configs ac ON ac.id = c.autoscale_config_id
		LEFT JOIN dns_providers dp ON dp.id = ac.dns_provider_id`,
		owner, sessions.IntervalArg(lease), limit)
	if err != nil {
		return nil, fmt.Errorf("claiming autoscale work: %w", err)
	}
	works := make([]autoscale.Work, len(rows))
	for i, r := range rows {
		w := autoscale.Work{AgentID: r.AgentID, Name: r.Name, Lifecycle: r.Lifecycle, Since: r.Since, Started: r.Started,
			MachineID: r.MachineID,
			Endpoint:  r.Endpoint,
			ConfigID:  r.ConfigID.String, ConfigName: r.ConfigName.String,
			Size: domain.Resources{MilliCores: domain.MilliCores(r.Cores), MemoryMB: r.MemoryMB}, GPUs: r.GPUs,
			VM: autoscale.ProviderConfig{ID: r.VMID, Name: r.VMName, Type: r.VMType, Settings: r.VMSettings, Secrets: r.VMSecrets,
				CACert: r.CACert, CAKey: r.CAKey, ClientCert: r.ClientCert, ClientKey: r.ClientKey}}
		if r.DNSID.Valid {
			w.DNS = &autoscale.ProviderConfig{ID: r.DNSID.String, Name: r.DNSName.String, Type: r.DNSType.String,
				Settings: r.DNSSettings, Secrets: r.DNSSecrets}
		}
		works[i] = w
	}
	return works, nil
}

// RenewLease extends owner's lease on agent id.
func (s *Store) RenewLease(ctx context.Context, id, owner string, lease time.Duration) error {
	return s.leased(ctx, id, owner, `UPDATE agents SET work_lease_until = now() + $3::interval
		WHERE id = $1 AND work_owner = $2 AND lifecycle IN ('provisioning', 'deleting')`, sessions.IntervalArg(lease))
}

// leased runs query (whose $1 and $2 are the agent's id and the owner)
// and fails with autoscale.ErrLeaseLost when it changed no row.
func (s *Store) leased(ctx context.Context, id, owner, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, append([]any{id, owner}, args...)...)
	if err != nil {
		return fmt.Errorf("agent %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("agent %s: %w", id, autoscale.ErrLeaseLost)
	}
	return nil
}

// MachineMade records agent id's machine, if owner still holds the work
// on it (autoscale.ErrLeaseLost otherwise: the machine is then nobody's).
func (s *Store) MachineMade(ctx context.Context, id, owner string, m autoscale.Machine) error {
	return s.leased(ctx, id, owner, `UPDATE agents SET machine_id = $3, docker_endpoint = $4, internal_address = $5, updated_at = now()
		WHERE id = $1 AND work_owner = $2 AND lifecycle = 'provisioning'`, m.ID, m.Endpoint(), m.Address.String())
}

// AgentReady makes agent id active and records the config's last scale;
// the step is announced with the machine MachineMade recorded.
func (s *Store) AgentReady(ctx context.Context, id, owner string) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var row struct {
			lifecycleRow
			ConfigID sql.NullString `db:"autoscale_config_id"`
		}
		err := tx.GetContext(ctx, &row, `UPDATE agents a SET lifecycle = 'active', lifecycle_at = now(), lifecycle_error = '', work_started_at = NULL,
				work_owner = '', work_lease_until = NULL, updated_at = now()
			WHERE a.id = $1 AND a.work_owner = $2 AND a.lifecycle = 'provisioning'
			RETURNING a.id, a.name, a.machine_id, a.internal_address, a.autoscale_config_id,
				(SELECT ac.name FROM autoscale_configs ac WHERE ac.id = a.autoscale_config_id) AS config_name`, id, owner)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("agent %s: %w", id, autoscale.ErrLeaseLost)
		}
		if err != nil {
			return fmt.Errorf("making agent %s active: %w", id, err)
		}
		if err := s.emitLifecycle(ctx, tx, row.lifecycleRow, domain.LifecycleProvisioning, domain.LifecycleActive,
			"its engine answers over TLS and holds the enabled workspaces' images"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE autoscale_configs SET last_scale_at = now(), last_error = '', last_error_at = NULL
			WHERE id = $1`, row.ConfigID)
		return err
	})
}

// AgentGone records that agent id's machine is deleted: the row stays, as
// its sessions refer to it, but belongs to no pool, config or provider.
// The step is announced with the config's name as it was before the row
// let go of it (old, read and locked in the same statement).
func (s *Store) AgentGone(ctx context.Context, id, owner string) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var a lifecycleRow
		err := tx.GetContext(ctx, &a, `UPDATE agents a SET lifecycle = 'deleted', lifecycle_at = now(), lifecycle_error = '', work_started_at = NULL,
				enabled = false, pool_id = NULL, autoscale_config_id = NULL, vm_provider_id = NULL,
				work_owner = '', work_lease_until = NULL, updated_at = now()
			FROM (SELECT ag.id, ac.name AS config_name FROM agents ag
				LEFT JOIN autoscale_configs ac ON ac.id = ag.autoscale_config_id
				WHERE ag.id = $1 FOR UPDATE OF ag) old
			WHERE a.id = old.id AND a.work_owner = $2 AND a.lifecycle = 'deleting'
			RETURNING a.id, a.name, a.machine_id, a.internal_address, old.config_name`, id, owner)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("agent %s: %w", id, autoscale.ErrLeaseLost)
		}
		if err != nil {
			return fmt.Errorf("agent %s: %w", id, err)
		}
		return s.emitLifecycle(ctx, tx, a, domain.LifecycleDeleting, domain.LifecycleDeleted,
			"its machine and DNS record are deleted")
	})
}

// AgentFailed records cause on agent id, and on its config when it was
// being made (the config then adds no agent for a while), and leaves the
// work alone until retryAt: a step that keeps failing is retried at that
// pace, not at every pass. abandon moves a provisioning agent to deleting.
func (s *Store) AgentFailed(ctx context.Context, id, owner string, cause error, abandon bool, retryAfter time.Duration) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var row struct {
			lifecycleRow
			ConfigID  sql.NullString `db:"autoscale_config_id"`
			Lifecycle string         `db:"lifecycle"`
			// Was is its lifecycle before (old, read and locked in the
			// same statement): an abandoned agent's step is announced.
			Was string `db:"was"`
		}
		err := tx.GetContext(ctx, &row, `UPDATE agents a SET lifecycle_error = $3, work_owner = '',
				work_lease_until = now() + $5::interval,
				lifecycle = CASE WHEN $4 AND a.lifecycle = 'provisioning' THEN 'deleting' ELSE a.lifecycle END,
				work_started_at = CASE WHEN $4 AND a.lifecycle = 'provisioning' THEN NULL ELSE a.work_started_at END,
				lifecycle_at = CASE WHEN $4 AND a.lifecycle = 'provisioning' THEN now() ELSE a.lifecycle_at END,
				updated_at = now()
			FROM (SELECT ag.id, ag.lifecycle, ac.name AS config_name FROM agents ag
				LEFT JOIN autoscale_configs ac ON ac.id = ag.autoscale_config_id
				WHERE ag.id = $1 FOR UPDATE OF ag) old
			WHERE a.id = old.id AND a.work_owner = $2
			RETURNING a.id, a.name, a.machine_id, a.internal_address, a.autoscale_config_id, a.lifecycle,
				old.lifecycle AS was, old.config_name`,
			id, owner, cause.Error(), abandon, sessions.IntervalArg(retryAfter))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("agent %s: %w", id, autoscale.ErrLeaseLost)
		}
		if err != nil {
			return fmt.Errorf("recording the failure of agent %s: %w", id, err)
		}
		if row.Was == domain.LifecycleProvisioning && row.Lifecycle == domain.LifecycleDeleting {
			if err := s.emitLifecycle(ctx, tx, row.lifecycleRow, row.Was, row.Lifecycle, cmp.Or(cause.Error(), "failed")); err != nil {
				return err
			}
		}
		if row.Lifecycle != domain.LifecycleProvisioning && !abandon {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE autoscale_configs SET last_error = $2, last_error_at = now() WHERE id = $1`,
			row.ConfigID, cause.Error())
		return err
	})
}

// Images lists the images of the enabled workspaces that have one.
func (s *Store) Images(ctx context.Context) ([]string, error) {
	var images []string
	if err := s.db.SelectContext(ctx, &images, `SELECT DISTINCT image FROM workspaces
		WHERE enabled AND server_pool_id IS NULL AND image <> '' ORDER BY image`); err != nil {
		return nil, fmt.Errorf("listing the workspaces' images: %w", err)
	}
	return images, nil
}

// EngineTLS is the TLS configuration of the engine at endpoint when an
// autoscaled agent uses it (docker.EnginesConfig.TLSFor); nil when none
// does.
func (s *Store) EngineTLS(ctx context.Context, endpoint string) (*tls.Config, error) {
	var p autoscale.ProviderConfig
	err := s.db.GetContext(ctx, &p, `SELECT vp.name AS "name", vp.tls_ca_cert AS "cacert", vp.tls_client_cert AS "clientcert",
			vp.tls_client_key AS "clientkey"
		FROM agents a JOIN vm_providers vp ON vp.id = a.vm_provider_id
		WHERE a.docker_endpoint = $1 AND a.lifecycle <> 'deleted' LIMIT 1`, endpoint)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the TLS settings of %s: %w", endpoint, err)
	}
	return p.ClientTLS()
}
