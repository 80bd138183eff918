package domain

import (
	"net"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// Agent is a Docker Engine endpoint that runs session containers, with the
// load its live sessions put on it.
type Agent struct {
	ID              string     `db:"id" json:"id"`
	Name            string     `db:"name" json:"name"`
	ZoneID          string     `db:"zone_id" json:"-"`
	Zone            string     `db:"zone" json:"zone"`
	PoolID          *string    `db:"pool_id" json:"-"`
	Pool            *string    `db:"pool" json:"pool"`
	DockerEndpoint  string     `db:"docker_endpoint" json:"docker_endpoint"`
	InternalAddress string     `db:"internal_address" json:"internal_address"`
	Cores           float64    `db:"cores" json:"cores"`
	MemoryMB        int32      `db:"memory_mb" json:"memory_mb"`
	GPUs            int32      `db:"gpus" json:"gpus"`
	Enabled         bool       `db:"enabled" json:"enabled"`
	Labels          Labels     `db:"labels" json:"labels"`
	Sessions        int        `db:"sessions" json:"sessions"`
	FreeCores       float64    `db:"free_cores" json:"free_cores"`
	FreeMemoryMB    int        `db:"free_memory_mb" json:"free_memory_mb"`
	LastHeartbeatAt *time.Time `db:"last_heartbeat_at" json:"last_heartbeat_at"`
	// AutoscaleConfig names the autoscale config that made the agent (nil
	// for an agent entered by hand), MachineID is its machine at the VM
	// provider, and Lifecycle says where it is in its life
	// (events.AgentActive, events.AgentDraining...), since LifecycleAt; LifecycleError is why the
	// autoscaler's last step with it failed.
	AutoscaleConfig *string   `db:"autoscale_config" json:"autoscale_config"`
	MachineID       string    `db:"machine_id" json:"machine_id"`
	Lifecycle       string    `db:"lifecycle" json:"lifecycle"`
	LifecycleAt     time.Time `db:"lifecycle_at" json:"lifecycle_at"`
	LifecycleError  string    `db:"lifecycle_error" json:"lifecycle_error"`
	CreatedAt       time.Time `db:"created_at" json:"created_at"`
	UpdatedAt       time.Time `db:"updated_at" json:"updated_at"`
}

// AgentUpdate is the body of PATCH /api/v1/agents/{name}.
type AgentUpdate struct {
	Name            Optional[string]   `json:"name"`
	Zone            Optional[string]   `json:"zone"`
	Pool            Optional[string]   `json:"pool"`
	DockerEndpoint  Optional[string]   `json:"docker_endpoint"`
	InternalAddress Optional[string]   `json:"internal_address"`
	Cores           Optional[float64]  `json:"cores"`
	MemoryMB        Optional[int32]    `json:"memory_mb"`
	GPUs            Optional[int32]    `json:"gpus"`
	Enabled         Optional[bool]     `json:"enabled"`
	Labels          Optional[[]string] `json:"labels"`
}

// AgentCreate is the body of POST /api/v1/agents: the same fields, name,
// zone, docker_endpoint, cores and memory_mb required.
type AgentCreate AgentUpdate

// Validate lists the body's problems.
func (in AgentCreate) Validate() FieldErrors { return validateAgent(AgentUpdate(in), required) }

// Validate lists the body's problems.
func (in AgentUpdate) Validate() FieldErrors { return validateAgent(in, optional) }

func validateAgent(in AgentUpdate, p presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, p)
	checkNonEmpty(&errs, "zone", in.Zone, p)
	checkNonEmpty(&errs, "pool", in.Pool, nullable)
	checkNonEmpty(&errs, "docker_endpoint", in.DockerEndpoint, p)
	if present(&errs, "internal_address", in.InternalAddress, optional) && in.InternalAddress.Value != "" &&
		net.ParseIP(in.InternalAddress.Value) == nil {
		errs.Add("internal_address", "must be an IP address (the agent's private address its sessions' ports are published on), or empty")
	}
	checkCores(&errs, "cores", in.Cores, p)
	checkMin(&errs, "memory_mb", in.MemoryMB, p, 1)
	checkMin(&errs, "gpus", in.GPUs, optional, 0)
	checkPresent(&errs, "enabled", in.Enabled, optional)
	checkPresent(&errs, "labels", in.Labels, optional)
	return errs
}

// Agent returns the agent the body describes, with defaults filled in; the
// zone and pool are still names only.
func (in AgentCreate) Agent() Agent {
	a := Agent{Enabled: true, Lifecycle: events.AgentActive}
	AgentUpdate(in).Apply(&a)
	return a
}

// Apply changes a as the body says; a changed zone or pool is a name only.
func (in AgentUpdate) Apply(a *Agent) {
	setIfPresent(&a.Name, in.Name)
	setIfPresent(&a.Zone, in.Zone)
	if in.Pool.Set {
		a.Pool = in.Pool.Ptr()
	}
	setIfPresent(&a.DockerEndpoint, in.DockerEndpoint)
	setIfPresent(&a.InternalAddress, in.InternalAddress)
	setIfPresent(&a.Cores, in.Cores)
	setIfPresent(&a.MemoryMB, in.MemoryMB)
	setIfPresent(&a.GPUs, in.GPUs)
	setIfPresent(&a.Enabled, in.Enabled)
	if in.Labels.Has() {
		a.Labels = Labels(in.Labels.Value)
	}
}

// CheckAddress is the rule that holds between an agent's fields: its
// sessions' ports are published on an IP address, never on every
// interface, so an agent whose engine is reached by host name needs
// internal_address (containerconfig.PublishAddress, the provisioner's
// rule, falls back to loopback for a local engine and to an endpoint's IP
// address).
func (a Agent) CheckAddress() FieldErrors {
	var errs FieldErrors
	if _, err := containerconfig.PublishAddress(a.InternalAddress, a.DockerEndpoint); err != nil {
		errs.Add("internal_address", "is required: %v; give the agent's private IP address, which its sessions' ports are published on", err)
	}
	return errs
}
