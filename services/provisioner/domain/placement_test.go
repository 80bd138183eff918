package domain

import (
	"errors"
	"testing"
)

func agent(name string, cores float64, memMB int64, usedCores float64, usedMB int64, labels ...string) Agent {
	return Agent{
		ID: "id-" + name, Name: name,
		Capacity: Resources{MilliCores: MilliCores(cores), MemoryMB: memMB},
		Used:     Resources{MilliCores: MilliCores(usedCores), MemoryMB: usedMB},
		Labels:   labels,
	}
}

func zone(name string, lb LoadBalancing, agents ...Agent) Zone {
	return Zone{ID: "id-" + name, Name: name, LoadBalancing: lb, Known: true, Agents: agents}
}

func need(cores float64, memMB int64) Demand {
	return Demand{Need: Resources{MilliCores: MilliCores(cores), MemoryMB: memMB}}
}

func TestPlaceSessionChoosesAgentByZoneLoadBalancing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		zones     []Zone
		demand    Demand
		wantZone  string
		wantAgent string
	}{
		{
			name:     "least_load takes the agent with the most free cores",
			zones:    []Zone{zone("z", LeastLoad, agent("a1", 4, 4096, 3, 0), agent("a2", 4, 4096, 1, 0), agent("a3", 4, 4096, 2, 0))},
			demand:   need(1, 512),
			wantZone: "z", wantAgent: "a2",
		},
		{
			name:     "most_load packs the fullest agent that still fits",
			zones:    []Zone{zone("z", MostLoad, agent("a1", 4, 4096, 3.5, 0), agent("a2", 4, 4096, 1, 0), agent("a3", 4, 4096, 2, 0))},
			demand:   need(1, 512),
			wantZone: "z", wantAgent: "a3",
		},
		{
			name:     "free memory breaks a tie in free cores",
			zones:    []Zone{zone("z", LeastLoad, agent("a1", 2, 4096, 1, 2048), agent("a2", 2, 4096, 1, 1024))},
			demand:   need(0.5, 256),
			wantZone: "z", wantAgent: "a2",
		},
		{
			name:     "name breaks a full tie",
			zones:    []Zone{zone("z", LeastLoad, agent("b", 2, 1024, 0, 0), agent("a", 2, 1024, 0, 0))},
			demand:   need(1, 512),
			wantZone: "z", wantAgent: "a",
		},
		{
			name: "first zone with capacity wins, in the order given",
			zones: []Zone{
				zone("first", LeastLoad, agent("f1", 1, 1024, 1, 0)),
				zone("second", LeastLoad, agent("s1", 8, 8192, 0, 0)),
				zone("third", LeastLoad, agent("t1", 16, 16384, 0, 0)),
			},
			demand:   need(1, 512),
			wantZone: "second", wantAgent: "s1",
		},
		{
			name:     "fractional cores add up exactly",
			zones:    []Zone{zone("z", LeastLoad, agent("a1", 1, 1024, 0.7, 0))},
			demand:   need(0.3, 128),
			wantZone: "z", wantAgent: "a1",
		},
		{
			name: "include and exclude labels restrict the agents",
			zones: []Zone{zone("z", LeastLoad,
				agent("plain", 8, 8192, 0, 0),
				agent("gpu-spot", 8, 8192, 0, 0, "gpu", "spot"),
				agent("gpu", 2, 2048, 0, 0, "gpu"),
			)},
			demand:   Demand{Need: Resources{MilliCores: 1000, MemoryMB: 512}, IncludeLabels: []string{"gpu"}, ExcludeLabels: []string{"spot"}},
			wantZone: "z", wantAgent: "gpu",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := PlaceSession(tt.zones, tt.demand)
			if err != nil {
				t.Fatalf("PlaceSession: %v", err)
			}
			if got.Zone.Name != tt.wantZone || got.Agent.Name != tt.wantAgent {
				t.Errorf("placed on %s/%s, want %s/%s", got.Zone.Name, got.Agent.Name, tt.wantZone, tt.wantAgent)
			}
		})
	}
}

func TestNoCapacityDetailNamesWhatRuledOutEachZone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		zones  []Zone
		demand Demand
		want   string
	}{
		{
			name: "cores, no agents, unknown zone",
			zones: []Zone{
				zone("zone-a", LeastLoad, agent("a1", 2, 4096, 1.5, 0)),
				zone("zone-b", LeastLoad),
				{Name: "zone-c"},
			},
			demand: need(1, 512),
			want:   "zone-a: agent a1 has 0.5 free cores, needs 1; zone-b: no enabled agents; zone-c: no such zone",
		},
		{
			name:   "memory, and every agent listed",
			zones:  []Zone{zone("z", MostLoad, agent("a1", 4, 1024, 0, 768), agent("a2", 4, 1024, 4, 0))},
			demand: need(1, 512),
			want:   "z: agent a1 has 256 MB free memory, needs 512, agent a2 has 0 free cores, needs 1",
		},
		{
			name:   "labels",
			zones:  []Zone{zone("z", LeastLoad, agent("a1", 4, 4096, 0, 0), agent("a2", 4, 4096, 0, 0, "gpu", "spot"))},
			demand: Demand{Need: Resources{MilliCores: 1000, MemoryMB: 1}, IncludeLabels: []string{"gpu"}, ExcludeLabels: []string{"spot"}},
			want:   "z: agent a1 lacks label gpu, agent a2 has excluded label spot",
		},
		{
			name:   "over-committed agent reports zero, not a negative number",
			zones:  []Zone{zone("z", LeastLoad, agent("a1", 1, 1024, 1.5, 0))},
			demand: need(0.25, 1),
			want:   "z: agent a1 has 0 free cores, needs 0.25",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := PlaceSession(tt.zones, tt.demand)
			var nc *NoCapacityError
			if !errors.As(err, &nc) {
				t.Fatalf("PlaceSession error = %v, want a *NoCapacityError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("detail\n got %q\nwant %q", err.Error(), tt.want)
			}
		})
	}
}

func TestFormatCores(t *testing.T) {
	t.Parallel()
	for milli, want := range map[int64]string{0: "0", 500: "0.5", 1000: "1", 1250: "1.25", 2001: "2.001"} {
		if got := FormatCores(milli); got != want {
			t.Errorf("FormatCores(%d) = %q, want %q", milli, got, want)
		}
	}
}
