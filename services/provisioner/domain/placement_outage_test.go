package domain

import (
	"errors"
	"testing"
	"time"
)

// engineDown is a with its engine known not to answer since t, with err.
func engineDown(a Agent, err string, since time.Time) Agent {
	a.Outage = &EngineOutage{Err: err, Since: since}
	return a
}

var outageSince = time.Date(2025, 3, 4, 10, 11, 12, 0, time.FixedZone("CET", 3600))

// An agent whose engine is known to be down hosts nothing, however much
// room it has: the zone's load balancing picks among the others.
func TestPlacementSkipsAgentsWhoseEngineIsDown(t *testing.T) {
	t.Parallel()
	refused := "docker engine tcp://10.0.0.9:2375 does not answer: connection refused"
	tests := []struct {
		name      string
		zones     []Zone
		wantZone  string
		wantAgent string
	}{
		{
			name: "least_load prefers the roomier agent, whose engine is down",
			zones: []Zone{zone("z", LeastLoad,
				engineDown(agent("big", 16, 16384, 0, 0), refused, outageSince),
				agent("small", 2, 2048, 1, 0))},
			wantZone: "z", wantAgent: "small",
		},
		{
			name: "most_load prefers the fuller agent, whose engine is down",
			zones: []Zone{zone("z", MostLoad,
				agent("empty", 4, 4096, 0, 0),
				engineDown(agent("full", 4, 4096, 3, 0), refused, outageSince))},
			wantZone: "z", wantAgent: "empty",
		},
		{
			name: "a zone whose only agent is down is passed over for the next",
			zones: []Zone{
				zone("first", LeastLoad, engineDown(agent("f1", 8, 8192, 0, 0), refused, outageSince)),
				zone("second", LeastLoad, agent("s1", 2, 2048, 0, 0)),
			},
			wantZone: "second", wantAgent: "s1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := PlaceSession(tt.zones, need(1, 512))
			if err != nil {
				t.Fatalf("PlaceSession: %v", err)
			}
			if got.Zone.Name != tt.wantZone || got.Agent.Name != tt.wantAgent {
				t.Errorf("placed on %s/%s, want %s/%s", got.Zone.Name, got.Agent.Name, tt.wantZone, tt.wantAgent)
			}
		})
	}
}

// The no-capacity detail says which agents were passed over because
// their engine is down, with the error and since when (in UTC), beside
// the other reasons.
func TestNoCapacityDetailNamesAgentsWhoseEngineIsDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		zones  []Zone
		demand Demand
		want   string
	}{
		{
			name:   "the only agent is down",
			zones:  []Zone{zone("zone-a", LeastLoad, engineDown(agent("a1", 4, 4096, 0, 0), "dial tcp 10.0.0.9:2375: connect: connection refused", outageSince))},
			demand: need(1, 512),
			want:   "zone-a: agent a1 engine unreachable: dial tcp 10.0.0.9:2375: connect: connection refused (since 2025-03-04T09:11:12Z)",
		},
		{
			name: "one down, one full, then a zone without agents",
			zones: []Zone{
				zone("zone-a", LeastLoad,
					agent("a2", 1, 4096, 1, 0),
					engineDown(agent("a1", 8, 8192, 0, 0), "context deadline exceeded", outageSince)),
				zone("zone-b", LeastLoad),
			},
			demand: need(1, 512),
			want: "zone-a: agent a1 engine unreachable: context deadline exceeded (since 2025-03-04T09:11:12Z), " +
				"agent a2 has 0 free cores, needs 1; zone-b: no enabled agents",
		},
		{
			name:   "labels rule an agent out before its engine does",
			zones:  []Zone{zone("z", LeastLoad, engineDown(agent("a1", 4, 4096, 0, 0, "spot"), "connection refused", outageSince))},
			demand: Demand{Need: Resources{MilliCores: 1000, MemoryMB: 1}, ExcludeLabels: []string{"spot"}},
			want:   "z: agent a1 has excluded label spot",
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

// A staging pool counts no room on an agent whose engine is down, and
// says why it is short.
func TestRoomInZoneLeavesOutAgentsWhoseEngineIsDown(t *testing.T) {
	t.Parallel()
	z := zone("z", LeastLoad,
		engineDown(agent("big", 16, 16384, 0, 0), "connection refused", outageSince),
		agent("small", 2, 2048, 0, 0))
	room, short := RoomInZone(z, nil, need(1, 512), 5)
	if room != 2 {
		t.Errorf("room = %d, want 2 (the small agent's)", room)
	}
	want := "agent big engine unreachable: connection refused (since 2025-03-04T09:11:12Z), agent small has 0 free cores, needs 1"
	if short != want {
		t.Errorf("short\n got %q\nwant %q", short, want)
	}
}
