package domain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Agent lifecycles (the agents table's lifecycle, libs/events' names):
// agents entered by hand are always active; the autoscaler moves its own
// through the others.
const (
	LifecycleProvisioning = events.AgentProvisioning
	LifecycleActive       = events.AgentActive
	LifecycleDraining     = events.AgentDraining
	LifecycleDeleting     = events.AgentDeleting
	LifecycleDeleted      = events.AgentDeleted
)

// ScaleConfig is an autoscale config as the decision reads it.
type ScaleConfig struct {
	Enabled bool
	// Standby and StandbyGPUs are the free capacity to keep on the pool's
	// agents in the zone.
	Standby     Resources
	StandbyGPUs int
	// MinAgents and MaxAgents bound the agents the config made that are
	// being made or take sessions.
	MinAgents, MaxAgents int
	// Backoff is the downscale backoff: no agent is drained sooner than
	// this after the last change, and a drained agent stays this long.
	Backoff time.Duration
	// Aggressive adds every agent the standby lacks at once; otherwise one
	// at a time, the next once the last one is up.
	Aggressive bool
	// AgentSize and AgentGPUs are what a new agent brings.
	AgentSize Resources
	AgentGPUs int
}

// ScaleAgent is an agent of the config's pool in its zone as the decision
// reads it.
type ScaleAgent struct {
	Name      string
	Lifecycle string
	// Since is when it entered its lifecycle.
	Since time.Time
	// Autoscaled: the config made it. The pool's other agents (entered by
	// hand) count towards the free capacity, but the config never drains
	// them nor counts them against its min and max.
	Autoscaled bool
	// Down: its engine is known not to answer (since DownSince); its
	// capacity counts as none, as placement puts nothing there.
	Down      bool
	DownSince time.Time
	// Capacity is its cores and memory, Used what its live sessions
	// reserve, StagedUsed the part of Used its staged sessions (no user
	// yet) reserve: draining it moves those elsewhere.
	Capacity, Used, StagedUsed Resources
	GPUs                       int
	// Sessions counts its live sessions, UserSessions those with a user.
	Sessions, UserSessions int
}

// free is what the agent has free for new sessions.
func (a ScaleAgent) free() Resources { return a.Capacity.Minus(a.Used) }

// ScaleState is what one decision for one autoscale config reads.
type ScaleState struct {
	Config ScaleConfig
	Agents []ScaleAgent
	// LastScaleAt is when the config last added or drained an agent
	// (zero: never).
	LastScaleAt time.Time
	// FailedAt is when the config's last step (making or deleting an
	// agent) failed; no agent is added until RetryAfter has passed since,
	// as the same cause would fail it too.
	FailedAt   time.Time
	RetryAfter time.Duration
	Now        time.Time
}

// held says why s adds no agent now ("" when it may).
func (s ScaleState) held() string {
	if s.FailedAt.IsZero() || s.Now.Sub(s.FailedAt) >= s.RetryAfter {
		return ""
	}
	return fmt.Sprintf("the last attempt failed at %s; no agent is added before %s",
		s.FailedAt.UTC().Format(time.RFC3339), s.FailedAt.Add(s.RetryAfter).UTC().Format(time.RFC3339))
}

// ScaleAction is what a decision does.
type ScaleAction string

// The actions.
const (
	// ScaleNone: nothing to do; Reason says why.
	ScaleNone ScaleAction = "none"
	// ScaleUp: add Count agents.
	ScaleUp ScaleAction = "scale_up"
	// ScaleUndrain: take Agent (draining) back into service: cheaper than
	// a new machine.
	ScaleUndrain ScaleAction = "undrain"
	// ScaleDrain: stop placing sessions on Agent, replace its staged
	// sessions elsewhere and let its running ones end.
	ScaleDrain ScaleAction = "drain"
	// ScaleDelete: delete Agent's machine (drained, empty and past the
	// backoff).
	ScaleDelete ScaleAction = "delete"
)

// ScaleDecision is the outcome of DecideScale.
type ScaleDecision struct {
	Action ScaleAction
	// Count is the agents to add (ScaleUp).
	Count int
	// Agent names the agent of ScaleUndrain, ScaleDrain and ScaleDelete.
	Agent string
	// Reason says why, in an operator's words, with the figures.
	Reason string
}

func (d ScaleDecision) String() string {
	switch d.Action {
	case ScaleUp:
		return fmt.Sprintf("scale up by %d: %s", d.Count, d.Reason)
	case ScaleNone:
		return d.Reason
	}
	return fmt.Sprintf("%s %s: %s", d.Action, d.Agent, d.Reason)
}

// capacity is the free capacity the decision plans with.
type capacity struct {
	Resources
	GPUs int
}

func (c capacity) String() string {
	s := fmt.Sprintf("%s cores, %d MiB", FormatCores(c.MilliCores), c.MemoryMB)
	if c.GPUs != 0 {
		s += fmt.Sprintf(", %d GPUs", c.GPUs)
	}
	return s
}

// covers reports whether c is at least the standby of cfg.
func (c capacity) covers(cfg ScaleConfig) bool {
	return c.MilliCores >= cfg.Standby.MilliCores && c.MemoryMB >= cfg.Standby.MemoryMB && c.GPUs >= cfg.StandbyGPUs
}

// DecideScale is the autoscaler's decision for one config, one step at a
// time (the loop applies it and decides again):
//
//  1. A disabled config does nothing.
//  2. More agents than max_agents (it was lowered): drain one.
//  3. Fewer agents than min_agents: add the difference (taking a draining
//     agent back first).
//  4. Less free than the standby (the pool's active agents in the zone
//     that answer, plus the full size of the agents being made): take a
//     draining agent back; else, at max_agents, drain an agent that has
//     not answered for the backoff or longer, so that a new one replaces
//     it; else add agents: one, once none is being made, or, with
//     aggressive scaling, as many as the shortfall needs at once. A
//     shortfall a new agent would not cover (GPUs its machines lack) adds
//     none.
//  5. A drained agent with no live session, drained for the backoff or
//     longer, is deleted.
//  6. Otherwise, past the backoff since the last change, with no agent
//     being made and more agents than min_agents: drain an agent that
//     does not answer, or else the one with the fewest sessions of users
//     (then the fewest sessions, then the newest), if the others would
//     still have the standby free, its staged sessions moved onto them.
func DecideScale(s ScaleState) ScaleDecision {
	cfg := s.Config
	if !cfg.Enabled {
		return ScaleDecision{Action: ScaleNone, Reason: "disabled: its agents stay as they are"}
	}
	var (
		free                            capacity
		counted, provisioning, draining []ScaleAgent
	)
	for _, a := range s.Agents {
		switch a.Lifecycle {
		case LifecycleActive:
			if !a.Down {
				f := a.free()
				free.MilliCores += max(0, f.MilliCores)
				free.MemoryMB += max(0, f.MemoryMB)
				free.GPUs += a.GPUs
			}
			if a.Autoscaled {
				counted = append(counted, a)
			}
		case LifecycleProvisioning:
			free.MilliCores += a.Capacity.MilliCores
			free.MemoryMB += a.Capacity.MemoryMB
			free.GPUs += a.GPUs
			counted = append(counted, a)
			provisioning = append(provisioning, a)
		case LifecycleDraining:
			if a.Autoscaled {
				draining = append(draining, a)
			}
		}
	}
	n := len(counted)
	// The active agents the config may drain, the best first: one that
	// does not answer, then the one with the fewest users' sessions,
	// the fewest sessions, the newest.
	var candidates []ScaleAgent
	for _, a := range counted {
		if a.Lifecycle == LifecycleActive {
			candidates = append(candidates, a)
		}
	}
	slices.SortStableFunc(candidates, func(a, b ScaleAgent) int {
		return cmp.Or(-cmp.Compare(boolInt(a.Down), boolInt(b.Down)), cmp.Compare(a.UserSessions, b.UserSessions),
			cmp.Compare(a.Sessions, b.Sessions), b.Since.Compare(a.Since))
	})
	if n > cfg.MaxAgents && len(candidates) > 0 {
		return ScaleDecision{Action: ScaleDrain, Agent: candidates[0].Name,
			Reason: fmt.Sprintf("%d agent(s), max_agents is %d", n, cfg.MaxAgents)}
	}
	// The draining agent to take back first: the one with the most
	// sessions still on it, among those that answer.
	undrain := func() (ScaleAgent, bool) {
		up := slices.DeleteFunc(slices.Clone(draining), func(a ScaleAgent) bool { return a.Down })
		if len(up) == 0 {
			return ScaleAgent{}, false
		}
		return slices.MaxFunc(up, func(a, b ScaleAgent) int { return cmp.Compare(a.Sessions, b.Sessions) }), true
	}
	if n < cfg.MinAgents {
		reason := fmt.Sprintf("%d agent(s), min_agents is %d", n, cfg.MinAgents)
		if a, ok := undrain(); ok {
			return ScaleDecision{Action: ScaleUndrain, Agent: a.Name, Reason: reason}
		}
		if held := s.held(); held != "" {
			return ScaleDecision{Action: ScaleNone, Reason: reason + "; " + held}
		}
		return ScaleDecision{Action: ScaleUp, Count: cfg.MinAgents - n, Reason: reason}
	}
	standby := capacity{Resources: cfg.Standby, GPUs: cfg.StandbyGPUs}
	if !free.covers(cfg) {
		short := fmt.Sprintf("%s free, standby is %s", free, standby)
		if a, ok := undrain(); ok {
			return ScaleDecision{Action: ScaleUndrain, Agent: a.Name, Reason: short}
		}
		if n >= cfg.MaxAgents {
			for _, a := range candidates {
				if a.Down && s.Now.Sub(a.DownSince) >= cfg.Backoff {
					return ScaleDecision{Action: ScaleDrain, Agent: a.Name, Reason: fmt.Sprintf("%s; at max_agents (%d), and agent %s has not answered since %s",
						short, cfg.MaxAgents, a.Name, a.DownSince.UTC().Format(time.RFC3339))}
				}
			}
			return ScaleDecision{Action: ScaleNone, Reason: fmt.Sprintf("%s; at max_agents (%d)", short, cfg.MaxAgents)}
		}
		if lacks := uncovered(cfg, free); lacks != "" {
			return ScaleDecision{Action: ScaleNone, Reason: fmt.Sprintf("%s; a new agent would add no %s", short, lacks)}
		}
		if held := s.held(); held != "" {
			return ScaleDecision{Action: ScaleNone, Reason: short + "; " + held}
		}
		if !cfg.Aggressive {
			if len(provisioning) > 0 {
				return ScaleDecision{Action: ScaleNone, Reason: fmt.Sprintf("%s; waiting for agent %s to come up", short, provisioning[0].Name)}
			}
			return ScaleDecision{Action: ScaleUp, Count: 1, Reason: short}
		}
		need := max(
			agentsFor(cfg.Standby.MilliCores-free.MilliCores, cfg.AgentSize.MilliCores),
			agentsFor(cfg.Standby.MemoryMB-free.MemoryMB, cfg.AgentSize.MemoryMB),
			agentsFor(int64(cfg.StandbyGPUs-free.GPUs), int64(cfg.AgentGPUs)),
		)
		return ScaleDecision{Action: ScaleUp, Count: min(max(need, 1), cfg.MaxAgents-n), Reason: short + " (aggressive)"}
	}
	for _, a := range draining {
		if a.Sessions == 0 && s.Now.Sub(a.Since) >= cfg.Backoff {
			return ScaleDecision{Action: ScaleDelete, Agent: a.Name,
				Reason: fmt.Sprintf("drained since %s with no session left", a.Since.UTC().Format(time.RFC3339))}
		}
	}
	met := fmt.Sprintf("%s free, standby is %s", free, standby)
	switch {
	case n <= cfg.MinAgents:
		return ScaleDecision{Action: ScaleNone, Reason: met}
	case len(provisioning) > 0:
		return ScaleDecision{Action: ScaleNone, Reason: fmt.Sprintf("%s; agent %s is coming up", met, provisioning[0].Name)}
	case !s.LastScaleAt.IsZero() && s.Now.Sub(s.LastScaleAt) < cfg.Backoff:
		return ScaleDecision{Action: ScaleNone, Reason: fmt.Sprintf("%s; no agent is taken away before %s (downscale backoff)",
			met, s.LastScaleAt.Add(cfg.Backoff).UTC().Format(time.RFC3339))}
	}
	var kept []string
	for _, c := range candidates {
		after := free
		if !c.Down {
			f := c.free()
			after.MilliCores -= max(0, f.MilliCores)
			after.MemoryMB -= max(0, f.MemoryMB)
			after.GPUs -= c.GPUs
		}
		after.MilliCores -= c.StagedUsed.MilliCores
		after.MemoryMB -= c.StagedUsed.MemoryMB
		if after.covers(cfg) {
			return ScaleDecision{Action: ScaleDrain, Agent: c.Name, Reason: fmt.Sprintf("%s; without it %s would still be", met, after)}
		}
		kept = append(kept, fmt.Sprintf("without agent %s only %s would be", c.Name, after))
	}
	if len(kept) == 0 {
		return ScaleDecision{Action: ScaleNone, Reason: met}
	}
	return ScaleDecision{Action: ScaleNone, Reason: met + "; " + kept[0]}
}

// uncovered names what the standby lacks that no new agent brings (its
// machines have no GPUs, say): "" when a new agent helps.
func uncovered(cfg ScaleConfig, free capacity) string {
	var lacks []string
	if free.MilliCores < cfg.Standby.MilliCores && cfg.AgentSize.MilliCores <= 0 {
		lacks = append(lacks, "cores")
	}
	if free.MemoryMB < cfg.Standby.MemoryMB && cfg.AgentSize.MemoryMB <= 0 {
		lacks = append(lacks, "memory")
	}
	if free.GPUs < cfg.StandbyGPUs && cfg.AgentGPUs <= 0 {
		lacks = append(lacks, "GPUs")
	}
	return strings.Join(lacks, " or ")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// agentsFor is how many agents of size each it takes to cover lack (0
// when nothing lacks; a lack no agent covers, size 0, takes none).
func agentsFor(lack, each int64) int {
	if lack <= 0 || each <= 0 {
		return 0
	}
	return int((lack + each - 1) / each)
}
