package domain

import (
	"time"
)

// AutoscaleDownscaleBackoffDefault is how long the autoscaler waits after
// a change of a pool's agents before it takes one away, and how long a
// drained agent stays before its machine is deleted, unless told (Kasm's
// default, 900 seconds).
const AutoscaleDownscaleBackoffDefault = 15 * time.Minute

// AutoscaleConfig keeps the free capacity of a docker_agent pool's agents
// in one zone at its standby cores, memory and GPUs, adding agents (machines
// of VMProvider, with DNSProvider's records) up to MaxAgents and removing
// them down to MinAgents. The provisioner's autoscaler acts on it and
// records what it decided.
type AutoscaleConfig struct {
	ID                    string   `db:"id" json:"id"`
	Name                  string   `db:"name" json:"name"`
	PoolID                string   `db:"pool_id" json:"-"`
	Pool                  string   `db:"pool" json:"pool"`
	ZoneID                string   `db:"zone_id" json:"-"`
	Zone                  string   `db:"zone" json:"zone"`
	Enabled               bool     `db:"enabled" json:"enabled"`
	AggressiveScaling     bool     `db:"aggressive_scaling" json:"aggressive_scaling"`
	DownscaleBackoff      Duration `db:"downscale_backoff" json:"downscale_backoff"`
	StandbyCores          float64  `db:"standby_cores" json:"standby_cores"`
	StandbyMemoryMB       int32    `db:"standby_memory_mb" json:"standby_memory_mb"`
	StandbyGPUs           int32    `db:"standby_gpus" json:"standby_gpus"`
	AgentCoresOverride    *float64 `db:"agent_cores_override" json:"agent_cores_override"`
	AgentMemoryMBOverride *int32   `db:"agent_memory_mb_override" json:"agent_memory_mb_override"`
	MinAgents             int32    `db:"min_agents" json:"min_agents"`
	MaxAgents             int32    `db:"max_agents" json:"max_agents"`
	VMProviderID          string   `db:"vm_provider_id" json:"-"`
	VMProvider            string   `db:"vm_provider" json:"vm_provider"`
	DNSProviderID         *string  `db:"dns_provider_id" json:"-"`
	DNSProvider           *string  `db:"dns_provider" json:"dns_provider"`
	// What the autoscaler did: when it last added or removed an agent,
	// what it last decided and why, and its last failure.
	LastScaleAt    *time.Time `db:"last_scale_at" json:"last_scale_at"`
	LastDecision   string     `db:"last_decision" json:"last_decision"`
	LastDecisionAt *time.Time `db:"last_decision_at" json:"last_decision_at"`
	LastError      string     `db:"last_error" json:"last_error"`
	LastErrorAt    *time.Time `db:"last_error_at" json:"last_error_at"`
	// Agents are the agents the autoscaler made for it, by name, with
	// where each is in its life.
	Agents    []AutoscaledAgent `db:"-" json:"agents"`
	CreatedAt time.Time         `db:"created_at" json:"created_at"`
	UpdatedAt time.Time         `db:"updated_at" json:"updated_at"`
}

// AutoscaledAgent is an agent as its autoscale config lists it.
type AutoscaledAgent struct {
	Name        string    `db:"name" json:"name"`
	Lifecycle   string    `db:"lifecycle" json:"lifecycle"`
	LifecycleAt time.Time `db:"lifecycle_at" json:"lifecycle_at"`
	Sessions    int       `db:"sessions" json:"sessions"`
	ConfigID    string    `db:"autoscale_config_id" json:"-"`
}

// Validate lists the problems only the whole config shows.
func (c AutoscaleConfig) Validate() FieldErrors {
	var errs FieldErrors
	if c.MinAgents > c.MaxAgents {
		errs.Add("min_agents", "is %d, more than max_agents (%d)", c.MinAgents, c.MaxAgents)
	}
	return errs
}

// AutoscaleConfigUpdate is the body of PATCH
// /api/v1/autoscale-configs/{name}.
type AutoscaleConfigUpdate struct {
	Name                  Optional[string]  `json:"name"`
	Pool                  Optional[string]  `json:"pool"`
	Zone                  Optional[string]  `json:"zone"`
	Enabled               Optional[bool]    `json:"enabled"`
	AggressiveScaling     Optional[bool]    `json:"aggressive_scaling"`
	DownscaleBackoff      Optional[string]  `json:"downscale_backoff"`
	StandbyCores          Optional[float64] `json:"standby_cores"`
	StandbyMemoryMB       Optional[int32]   `json:"standby_memory_mb"`
	StandbyGPUs           Optional[int32]   `json:"standby_gpus"`
	AgentCoresOverride    Optional[float64] `json:"agent_cores_override"`
	AgentMemoryMBOverride Optional[int32]   `json:"agent_memory_mb_override"`
	MinAgents             Optional[int32]   `json:"min_agents"`
	MaxAgents             Optional[int32]   `json:"max_agents"`
	VMProvider            Optional[string]  `json:"vm_provider"`
	DNSProvider           Optional[string]  `json:"dns_provider"`
}

// AutoscaleConfigCreate is the body of POST /api/v1/autoscale-configs:
// name, pool, zone, max_agents and vm_provider required.
type AutoscaleConfigCreate AutoscaleConfigUpdate

// Validate lists the body's problems.
func (in AutoscaleConfigCreate) Validate() FieldErrors {
	return validateAutoscaleConfig(AutoscaleConfigUpdate(in), required)
}

// Validate lists the body's problems.
func (in AutoscaleConfigUpdate) Validate() FieldErrors {
	return validateAutoscaleConfig(in, optional)
}

// autoscaleAgentsMax bounds max_agents: a typing mistake must not order a
// thousand machines.
const autoscaleAgentsMax = 500

func validateAutoscaleConfig(in AutoscaleConfigUpdate, p presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, p)
	checkNonEmpty(&errs, "pool", in.Pool, p)
	checkNonEmpty(&errs, "zone", in.Zone, p)
	checkPresent(&errs, "enabled", in.Enabled, optional)
	checkPresent(&errs, "aggressive_scaling", in.AggressiveScaling, optional)
	if present(&errs, "downscale_backoff", in.DownscaleBackoff, optional) && in.DownscaleBackoff.Value != "0s" {
		checkDuration(&errs, "downscale_backoff", in.DownscaleBackoff, optional)
	}
	if present(&errs, "standby_cores", in.StandbyCores, optional) && (in.StandbyCores.Value < 0 || in.StandbyCores.Value > coresMax) {
		errs.Add("standby_cores", "must be between 0 and %g", float64(coresMax))
	}
	checkMin(&errs, "standby_memory_mb", in.StandbyMemoryMB, optional, 0)
	checkMin(&errs, "standby_gpus", in.StandbyGPUs, optional, 0)
	checkCores(&errs, "agent_cores_override", in.AgentCoresOverride, nullable)
	checkMin(&errs, "agent_memory_mb_override", in.AgentMemoryMBOverride, nullable, 1)
	checkRange(&errs, "min_agents", in.MinAgents, optional, 0, autoscaleAgentsMax)
	checkRange(&errs, "max_agents", in.MaxAgents, p, 1, autoscaleAgentsMax)
	checkNonEmpty(&errs, "vm_provider", in.VMProvider, p)
	checkNonEmpty(&errs, "dns_provider", in.DNSProvider, nullable)
	return errs
}

// AutoscaleConfig returns the config the body describes, with defaults
// filled in; pool, zone and providers are still names only.
func (in AutoscaleConfigCreate) AutoscaleConfig() AutoscaleConfig {
	c := AutoscaleConfig{Enabled: true, DownscaleBackoff: Duration(AutoscaleDownscaleBackoffDefault)}
	AutoscaleConfigUpdate(in).Apply(&c)
	return c
}

// Apply changes c as the body says; changed references are names only.
func (in AutoscaleConfigUpdate) Apply(c *AutoscaleConfig) {
	setIfPresent(&c.Name, in.Name)
	setIfPresent(&c.Pool, in.Pool)
	setIfPresent(&c.Zone, in.Zone)
	setIfPresent(&c.Enabled, in.Enabled)
	setIfPresent(&c.AggressiveScaling, in.AggressiveScaling)
	if in.DownscaleBackoff.Has() {
		c.DownscaleBackoff = 0
		if in.DownscaleBackoff.Value != "0s" {
			c.DownscaleBackoff = *durationOf(in.DownscaleBackoff)
		}
	}
	setIfPresent(&c.StandbyCores, in.StandbyCores)
	setIfPresent(&c.StandbyMemoryMB, in.StandbyMemoryMB)
	setIfPresent(&c.StandbyGPUs, in.StandbyGPUs)
	if in.AgentCoresOverride.Set {
		c.AgentCoresOverride = in.AgentCoresOverride.Ptr()
	}
	if in.AgentMemoryMBOverride.Set {
		c.AgentMemoryMBOverride = in.AgentMemoryMBOverride.Ptr()
	}
	setIfPresent(&c.MinAgents, in.MinAgents)
	setIfPresent(&c.MaxAgents, in.MaxAgents)
	setIfPresent(&c.VMProvider, in.VMProvider)
	if in.DNSProvider.Set {
		c.DNSProvider = in.DNSProvider.Ptr()
	}
}
