package domain

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LoadBalancing is a zone's rule for spreading sessions over its agents.
type LoadBalancing string

const (
	// LeastLoad puts a session on the agent with the most free capacity,
	// spreading sessions evenly.
	LeastLoad LoadBalancing = "least_load"
	// MostLoad puts a session on the agent with the least free capacity
	// that still fits it, packing agents so that others stay empty.
	MostLoad LoadBalancing = "most_load"
)

// Resources are CPU and memory. Cores are counted in thousandths
// (millicores), the precision of the database's numeric(10, 3), so that
// sums never drift the way float64 sums would.
type Resources struct {
	MilliCores int64
	MemoryMB   int64
}

// MilliCores converts a core count such as 0.5 to 500.
func MilliCores(cores float64) int64 { return int64(math.Round(cores * 1000)) }

// Fits reports whether need fits into r.
func (r Resources) Fits(need Resources) bool {
	return need.MilliCores <= r.MilliCores && need.MemoryMB <= r.MemoryMB
}

// Minus returns r less o.
func (r Resources) Minus(o Resources) Resources {
	return Resources{MilliCores: r.MilliCores - o.MilliCores, MemoryMB: r.MemoryMB - o.MemoryMB}
}

// FormatCores writes millicores as a core count: 500 → "0.5", 2000 → "2".
func FormatCores(milli int64) string {
	return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64)
}

// Agent is an enabled Docker agent as placement sees it.
type Agent struct {
	ID       string
	Name     string
	Capacity Resources
	// Used is the sum reserved by the agent's live sessions.
	Used Resources
	// Labels are the agent's own labels and its pool's.
	Labels []string
	// Outage is set when the agent's Docker engine is known not to answer
	// (app/enginehealth): placement passes the agent over, whatever room
	// it has, rather than send a session to fail or wait there.
	Outage *EngineOutage
}

// EngineOutage is why an agent's Docker engine is taken for unreachable.
type EngineOutage struct {
	// Err is what contacting the engine failed with.
	Err string
	// Since is when it was first seen failing, in this outage.
	Since time.Time
}

// String is the outage as placement reports it: "engine unreachable:
// <error> (since <time>)".
func (o EngineOutage) String() string {
	return fmt.Sprintf("engine unreachable: %s (since %s)", o.Err, o.Since.UTC().Format(time.RFC3339))
}

// Free is what the agent can still host.
func (a Agent) Free() Resources { return a.Capacity.Minus(a.Used) }

// Zone is a candidate zone with its enabled agents.
type Zone struct {
	ID            string
	Name          string
	LoadBalancing LoadBalancing
	// Known is false when no zone has this name.
	Known  bool
	Agents []Agent
}

// Demand is what a session needs from its agent.
type Demand struct {
	Need Resources
	// IncludeLabels must all be on the agent; ExcludeLabels none of them
	// (the workspace's include_labels / exclude_labels).
	IncludeLabels []string
	ExcludeLabels []string
}

// Placement is where a session runs.
type Placement struct {
	Zone  Zone
	Agent Agent
}

// NoCapacityError says why no zone could host a session, zone by zone, in
// the order they were tried.
type NoCapacityError struct {
	Reasons []string
}

func (e *NoCapacityError) Error() string {
	if len(e.Reasons) == 0 {
		return "no candidate zones"
	}
	return strings.Join(e.Reasons, "; ")
}

// PlaceSession picks the first zone, in order, that has an agent the demand
// fits on, and within it the agent its load balancing prefers. An agent
// whose engine is known not to answer (Agent.Outage) fits nothing. When
// none fits it returns a *NoCapacityError naming what ruled out each zone,
// e.g. "zone-a: agent a1 has 0.5 free cores, needs 1, agent a2 engine
// unreachable: … (since 2025-01-02T15:04:05Z); zone-b: no enabled agents".
func PlaceSession(zones []Zone, d Demand) (Placement, error) {
	reasons := make([]string, 0, len(zones))
	for _, z := range zones {
		a, why := ChooseAgent(z, d)
		if why == "" {
			return Placement{Zone: z, Agent: a}, nil
		}
		reasons = append(reasons, z.Name+": "+why)
	}
	return Placement{}, &NoCapacityError{Reasons: reasons}
}

// ChooseAgent picks the agent of z that hosts d, following z's load
// balancing; ties go to the agent whose name sorts first, so the choice is
// deterministic. When no agent fits it returns why, agent by agent (by
// name).
func ChooseAgent(z Zone, d Demand) (Agent, string) {
	if !z.Known {
		return Agent{}, "no such zone"
	}
	if len(z.Agents) == 0 {
		return Agent{}, "no enabled agents"
	}
	var fit []Agent
	var why []string
	byName := slices.SortedFunc(slices.Values(z.Agents), func(a, b Agent) int { return cmp.Compare(a.Name, b.Name) })
	for _, a := range byName {
		if reason := unfit(a, d); reason != "" {
			why = append(why, "agent "+a.Name+" "+reason)
			continue
		}
		fit = append(fit, a)
	}
	if len(fit) == 0 {
		return Agent{}, strings.Join(why, ", ")
	}
	mostFreeFirst := func(a, b Agent) int {
		fa, fb := a.Free(), b.Free()
		if c := cmp.Compare(fb.MilliCores, fa.MilliCores); c != 0 {
			return c
		}
		return cmp.Compare(fb.MemoryMB, fa.MemoryMB)
	}
	slices.SortStableFunc(fit, func(a, b Agent) int {
		c := mostFreeFirst(a, b)
		if z.LoadBalancing == MostLoad {
			c = -c
		}
		if c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return fit[0], ""
}

// unfit says why d cannot run on a, or "" when it can. Labels come first:
// an agent that may never host d is explained by them, whether its
// engine answers or not.
func unfit(a Agent, d Demand) string {
	if reason := unfitLabels(a.Labels, d.IncludeLabels, d.ExcludeLabels); reason != "" {
		return reason
	}
	if a.Outage != nil {
		return a.Outage.String()
	}
	free := a.Free()
	if d.Need.MilliCores > free.MilliCores {
		return fmt.Sprintf("has %s free cores, needs %s", FormatCores(max(free.MilliCores, 0)), FormatCores(d.Need.MilliCores))
	}
	if d.Need.MemoryMB > free.MemoryMB {
		return fmt.Sprintf("has %d MB free memory, needs %d", max(free.MemoryMB, 0), d.Need.MemoryMB)
	}
	return ""
}
