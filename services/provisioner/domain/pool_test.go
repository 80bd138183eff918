package domain

import (
	"slices"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	policy = RetryPolicy{
		Transient: Backoff{Min: time.Second, Max: time.Minute},
		Permanent: Backoff{Min: time.Minute, Max: 15 * time.Minute},
	}
	backoff = policy.Transient
)

// staged returns staged members, staged a minute apart in the order given.
func staged(ids ...string) []PoolMember {
	out := make([]PoolMember, len(ids))
	for i, id := range ids {
		out[i] = PoolMember{ID: id, Staged: true, Since: t0.Add(time.Duration(i) * time.Minute)}
	}
	return out
}

// making returns members still provisioning, created a second apart.
func making(ids ...string) []PoolMember {
	out := make([]PoolMember, len(ids))
	for i, id := range ids {
		out[i] = PoolMember{ID: id, Since: t0.Add(time.Duration(i) * time.Second)}
	}
	return out
}

func stale(ms []PoolMember) []PoolMember {
	for i := range ms {
		ms[i].Stale = true
	}
	return ms
}

// unclaimable marks members started with permissions the staging config
// no longer has.
func unclaimable(ms []PoolMember) []PoolMember {
	for i := range ms {
		ms[i].Stale, ms[i].Unclaimable = true, true
	}
	return ms
}

func members(groups ...[]PoolMember) []PoolMember { return slices.Concat(groups...) }

// room is what a zone with plenty of capacity reports.
const room = 100

func TestPlanPool(t *testing.T) {
	t.Parallel()
	imageMissing := "provisioning_failed: " + ImageMissingDetail("img:1", "a1")
	tests := []struct {
		name        string
		state       PoolState
		wantCreate  int
		wantDestroy []string
		wantHeld    HoldReason
		wantStatus  PoolStatus
		wantShort   ShortfallKind
		wantRetry   bool
	}{
		{
			name:       "empty pool fills to desired",
			state:      PoolState{Desired: 3, WorkspaceEnabled: true, Room: room, RefillBudget: 10},
			wantCreate: 3, wantStatus: PoolFilling,
		},
		{
			name:       "sessions provisioning count towards the pool",
			state:      PoolState{Desired: 3, WorkspaceEnabled: true, Members: members(making("p1", "p2"), staged("a")), Room: room, RefillBudget: 10},
			wantCreate: 0, wantStatus: PoolFilling,
		},
		{
			name:       "a full pool is ok",
			state:      PoolState{Desired: 2, WorkspaceEnabled: true, Members: staged("a", "b")},
			wantStatus: PoolOK,
		},
		{
			name:       "an assigned session is replaced",
			state:      PoolState{Desired: 2, WorkspaceEnabled: true, Members: staged("b"), Room: room, RefillBudget: 10},
			wantCreate: 1, wantStatus: PoolFilling,
		},
		{
			name:        "lowering desired destroys the newest staged first",
			state:       PoolState{Desired: 1, WorkspaceEnabled: true, Members: staged("old", "mid", "new")},
			wantDestroy: []string{"new", "mid"}, wantStatus: PoolOK,
		},
		{
			name:        "shrinking takes sessions still provisioning before staged ones, newest first",
			state:       PoolState{Desired: 1, WorkspaceEnabled: true, Members: members(staged("s1", "s2"), making("p1", "p2"))},
			wantDestroy: []string{"p2", "p1", "s2"}, wantStatus: PoolOK,
		},
		{
			name:        "a pool shrunk to one still provisioning is filling",
			state:       PoolState{Desired: 2, WorkspaceEnabled: true, Members: members(staged("s1"), making("p1", "p2"))},
			wantDestroy: []string{"p2"}, wantStatus: PoolFilling,
		},
		{
			name:        "a deleted config shrinks to nothing",
			state:       PoolState{Desired: 5, Deleted: true, WorkspaceEnabled: true, Members: members(staged("a", "b"), making("c"))},
			wantDestroy: []string{"c", "b", "a"}, wantStatus: PoolOK,
		},
		{
			name:        "desired zero destroys everything",
			state:       PoolState{Desired: 0, WorkspaceEnabled: true, Members: staged("a")},
			wantDestroy: []string{"a"}, wantStatus: PoolOK,
		},
		{
			name: "a roll with room creates the replacements first and destroys nothing",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Members: members(stale(staged("old1", "old2")))},
			wantCreate: 2, wantStatus: PoolFilling,
		},
		{
			name: "replacements on their way destroy nothing yet",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Members: members(stale(staged("old1", "old2")), making("n1", "n2"))},
			wantStatus: PoolFilling,
		},
		{
			name: "each fresh session staged releases one stale one, the oldest",
			state: PoolState{Desired: 3, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Members: members(stale(staged("old1", "old2", "old3")), staged("n1"), making("n2", "n3"))},
			wantDestroy: []string{"old1"}, wantStatus: PoolFilling,
		},
		{
			name: "once every replacement is staged the last stale ones go and the pool is ok",
			state: PoolState{Desired: 2, WorkspaceEnabled: true,
				Members: members(stale(staged("old1", "old2")), staged("n1", "n2"))},
			wantDestroy: []string{"old1", "old2"}, wantStatus: PoolOK,
		},
		{
			name: "the last stale session and the excess go in one pass",
			state: PoolState{Desired: 1, WorkspaceEnabled: true,
				Members: members(stale(staged("old1")), staged("n1"), making("excess"))},
			wantDestroy: []string{"old1", "excess"}, wantStatus: PoolOK,
		},
		{
			name: "partial room surges as far as it goes, without a shortfall",
			state: PoolState{Desired: 3, WorkspaceEnabled: true, Room: 1, RoomShort: "agent a1 has 0 free cores, needs 1", RefillBudget: 10, Now: t0,
				Members: stale(staged("old1", "old2", "old3"))},
			wantCreate: 1, wantHeld: HeldForRoll, wantStatus: PoolFilling, wantRetry: true,
		},
		{
			name: "no room while a replacement is on its way waits for it",
			state: PoolState{Desired: 3, WorkspaceEnabled: true, Room: 0, RoomShort: "agent a1 has 0 free cores, needs 1", RefillBudget: 10, Now: t0,
				Members: members(stale(staged("old1", "old2", "old3")), making("n1"))},
			wantHeld: HeldForRoll, wantStatus: PoolFilling, wantRetry: true,
		},
		{
			name: "stale sessions still provisioning are destroyed at once",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Members: members(stale(making("sp1", "sp2")), stale(staged("ss")))},
			wantDestroy: []string{"sp2", "sp1"}, wantCreate: 2, wantStatus: PoolFilling,
		},
		{
			name: "sessions no user can be given are destroyed at once, roll or not",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Members: members(unclaimable(staged("u1", "u2")))},
			wantDestroy: []string{"u2", "u1"}, wantCreate: 2, wantStatus: PoolFilling,
		},
		{
			name: "a deleted pool destroys everything, stale or not",
			state: PoolState{Desired: 3, Deleted: true, WorkspaceEnabled: true,
				Members: members(stale(staged("old1", "old2")), stale(making("sp")), staged("n1"), making("n2"))},
			wantDestroy: []string{"sp", "old1", "old2", "n2", "n1"}, wantStatus: PoolOK,
		},
		{
			name: "lowering desired during a roll keeps only the stale sessions the new target needs",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Members: members(stale(staged("old1", "old2", "old3", "old4")), staged("n1"))},
			wantDestroy: []string{"old1", "old2", "old3"}, wantCreate: 1, wantStatus: PoolFilling,
		},
		{
			name: "lowering desired below the fresh sessions ends the roll",
			state: PoolState{Desired: 1, WorkspaceEnabled: true,
				Members: members(stale(staged("old1", "old2")), staged("n1", "n2"))},
			wantDestroy: []string{"old1", "old2", "n2"}, wantStatus: PoolOK,
		},
		{
			name: "a broken new image keeps the stale sessions serving and says why",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Members:  stale(staged("old1", "old2")),
				Failures: FailureHistory{Consecutive: 1, LastAt: t0, Last: imageMissing}, Now: t0.Add(10 * time.Second)},
			wantHeld: HeldForBackoff, wantStatus: PoolShortfall, wantShort: ShortImageMissing,
		},
		{
			name: "the refill budget bounds the surge",
			state: PoolState{Desired: 5, WorkspaceEnabled: true, Room: room, RefillBudget: 4, Now: t0,
				Members: stale(staged("old1", "old2", "old3", "old4", "old5"))},
			wantCreate: 4, wantHeld: HeldForBudget, wantStatus: PoolFilling, wantRetry: true,
		},
		{
			name: "stale sessions go first, then the excess of current ones",
			state: PoolState{Desired: 1, WorkspaceEnabled: true,
				Members: members(stale(making("sp")), stale(staged("ss")), staged("c1", "c2"))},
			wantDestroy: []string{"sp", "ss", "c2"}, wantStatus: PoolOK,
		},
		{
			name: "no room for the surge replaces one stale session in place",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: 0, RoomShort: "agent a1 has 0 free cores, needs 1", RefillBudget: 10,
				Members: stale(staged("old1", "old2")), Now: t0},
			wantDestroy: []string{"old1"}, wantHeld: HeldForDestroys, wantStatus: PoolFilling, wantRetry: true,
		},
		{
			name: "replacements wait for the room a stale one is giving back",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: 0, RoomShort: "agent a1 has 0 free cores, needs 1", RefillBudget: 10,
				Members: stale(staged("old2")), Destroying: 1, Now: t0},
			wantHeld: HeldForDestroys, wantStatus: PoolFilling, wantRetry: true,
		},
		{
			name:       "the refill budget bounds creation",
			state:      PoolState{Desired: 5, WorkspaceEnabled: true, Room: room, RefillBudget: 2, Now: t0},
			wantCreate: 2, wantHeld: HeldForBudget, wantStatus: PoolFilling, wantRetry: true,
		},
		{
			name:     "a spent budget creates nothing",
			state:    PoolState{Desired: 5, WorkspaceEnabled: true, Room: room, RefillBudget: 0, Now: t0},
			wantHeld: HeldForBudget, wantStatus: PoolFilling, wantRetry: true,
		},
		{
			name:     "a disabled workspace creates nothing and is a permanent shortfall",
			state:    PoolState{Desired: 2, WorkspaceEnabled: false, RefillBudget: 10},
			wantHeld: HeldForDisabledWorkspace, wantStatus: PoolShortfall, wantShort: ShortWorkspaceDisabled,
		},
		{
			name:     "no room in the zone creates nothing and is a shortfall",
			state:    PoolState{Desired: 2, WorkspaceEnabled: true, Room: 0, RoomShort: "agent a1 has 0.5 free cores, needs 1", RefillBudget: 10, Now: t0},
			wantHeld: HeldForCapacity, wantStatus: PoolShortfall, wantShort: ShortNoCapacity, wantRetry: true,
		},
		{
			name:       "room for some creates those and is still a shortfall",
			state:      PoolState{Desired: 3, WorkspaceEnabled: true, Room: 1, RoomShort: "agent a1 has 0.5 free cores, needs 1", RefillBudget: 10, Now: t0},
			wantCreate: 1, wantHeld: HeldForCapacity, wantStatus: PoolShortfall, wantShort: ShortNoCapacity, wantRetry: true,
		},
		{
			name: "after a failure the pool waits out the backoff",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Failures: FailureHistory{Consecutive: 1, LastAt: t0, Last: "provisioning_failed: container exited with code 1"}, Now: t0.Add(500 * time.Millisecond)},
			wantHeld: HeldForBackoff, wantStatus: PoolShortfall, wantShort: ShortProvisioningFailed, wantRetry: true,
		},
		{
			name: "once the backoff passed it tries again, still short",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Failures: FailureHistory{Consecutive: 1, LastAt: t0, Last: "provisioning_failed"}, Now: t0.Add(2 * time.Second)},
			wantCreate: 2, wantStatus: PoolShortfall, wantShort: ShortProvisioningFailed,
		},
		{
			name: "repeated failures back off longer",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Failures: FailureHistory{Consecutive: 4, LastAt: t0, Last: "provisioning_failed"}, Now: t0.Add(5 * time.Second)},
			wantHeld: HeldForBackoff, wantStatus: PoolShortfall, wantShort: ShortProvisioningFailed, wantRetry: true,
		},
		{
			name: "a missing image is permanent: no fast retry",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Failures: FailureHistory{Consecutive: 1, LastAt: t0, Last: imageMissing}, Now: t0.Add(10 * time.Second)},
			wantHeld: HeldForBackoff, wantStatus: PoolShortfall, wantShort: ShortImageMissing,
		},
		{
			name: "a missing image is tried again after the permanent backoff",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10,
				Failures: FailureHistory{Consecutive: 1, LastAt: t0, Last: imageMissing}, Now: t0.Add(2 * time.Minute)},
			wantCreate: 2, wantStatus: PoolShortfall, wantShort: ShortImageMissing,
		},
		{
			name: "a configuration change retries at once, whatever the backoff",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: room, RefillBudget: 10, Forced: true,
				Failures: FailureHistory{Consecutive: 3, LastAt: t0, Last: imageMissing}, Now: t0.Add(time.Second)},
			wantCreate: 2, wantStatus: PoolShortfall, wantShort: ShortImageMissing,
		},
		{
			name: "no room is named before an older failure",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, Room: 0, RoomShort: "no enabled agents", RefillBudget: 10,
				Failures: FailureHistory{Consecutive: 1, LastAt: t0, Last: "provisioning_failed"}, Now: t0.Add(100 * time.Millisecond)},
			wantHeld: HeldForBackoff, wantStatus: PoolShortfall, wantShort: ShortNoCapacity, wantRetry: true,
		},
		{
			name: "failures do not matter to a full pool",
			state: PoolState{Desired: 1, WorkspaceEnabled: true, Members: staged("a"),
				Failures: FailureHistory{Consecutive: 3, LastAt: t0, Last: "provisioning_failed"}, Now: t0},
			wantStatus: PoolOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := PlanPool(tt.state, policy)
			if got.Create != tt.wantCreate || !slices.Equal(got.Destroy, tt.wantDestroy) || got.HeldBack != tt.wantHeld || got.Status != tt.wantStatus {
				t.Errorf("PlanPool = create %d destroy %v held %q status %s; want create %d destroy %v held %q status %s",
					got.Create, got.Destroy, got.HeldBack, got.Status, tt.wantCreate, tt.wantDestroy, tt.wantHeld, tt.wantStatus)
			}
			var kind ShortfallKind
			if got.Shortfall != nil {
				kind = got.Shortfall.Kind
			}
			if kind != tt.wantShort {
				t.Errorf("shortfall %+v, want kind %q", got.Shortfall, tt.wantShort)
			}
			if tt.wantRetry != !got.RetryAt.IsZero() {
				t.Errorf("retry at %v, want one: %v", got.RetryAt, tt.wantRetry)
			}
			if !got.RetryAt.IsZero() && !got.RetryAt.After(tt.state.Now) {
				t.Errorf("retry at %v is not after now %v", got.RetryAt, tt.state.Now)
			}
		})
	}
}

func TestNoCapacityRetriesBackOff(t *testing.T) {
	t.Parallel()
	s := PoolState{ConfigID: "c", Zone: "z", Desired: 1, WorkspaceEnabled: true, Room: 0, RefillBudget: 10, Now: t0}
	var prev time.Duration
	for waits := range 8 {
		s.CapacityWaits = waits
		d := PlanPool(s, policy).RetryAt.Sub(t0)
		if d < prev || d > time.Minute+time.Minute/5 {
			t.Errorf("after %d waits the retry is in %s (before: %s); want growing up to a minute", waits, d, prev)
		}
		prev = d
	}
	if prev < time.Minute {
		t.Errorf("retries of a full zone stop growing at %s, want the one-minute cap", prev)
	}
}

func TestBackoffGrowsExponentiallyToItsCap(t *testing.T) {
	t.Parallel()
	want := []time.Duration{0, 1, 2, 4, 8, 16, 32, 60, 60, 60}
	for n, base := range want {
		base *= time.Second
		got := backoff.Delay(n, "config-1")
		if got < base || got > base+base/5 {
			t.Errorf("Delay(%d) = %s, want %s plus at most 20%%", n, got, base)
		}
		if again := backoff.Delay(n, "config-1"); again != got {
			t.Errorf("Delay(%d) is not deterministic: %s then %s", n, got, again)
		}
	}
	if backoff.Delay(6, "config-1") == backoff.Delay(6, "config-2") && backoff.Delay(7, "config-1") == backoff.Delay(7, "config-2") {
		t.Error("different pools back off in lockstep")
	}
}

func TestShortfallOfFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		recorded  string
		want      ShortfallKind
		permanent bool
		message   string
	}{
		{"provisioning_failed: " + ImageMissingDetail("img:1", "a1"), ShortImageMissing, true,
			"image_missing: image img:1 is not on agent a1 (Greenroom never pulls images: build or load it there)"},
		{"provisioning_failed: agent a1: docker engine unix:///x does not answer", ShortProvisioningFailed, false,
			"provisioning_failed: agent a1: docker engine unix:///x does not answer"},
		{"provisioning_failed", ShortProvisioningFailed, false, "provisioning_failed: creating the last session's container failed"},
		{"provisioning_timeout", ShortProvisioningTimeout, false, "provisioning_timeout: the last session was not ready before the provisioning timeout"},
		{"no_capacity", ShortNoCapacity, false, "no_capacity: no enabled agent of the zone had room for the last session"},
		{"workspace_disabled", ShortWorkspaceDisabled, true, "workspace_disabled: the workspace was disabled"},
	}
	for _, tt := range tests {
		got := ShortfallOfFailure(tt.recorded)
		if got.Kind != tt.want || got.Permanent != tt.permanent || got.Message() != tt.message {
			t.Errorf("ShortfallOfFailure(%q) = %+v (%q); want %s, permanent %v, %q", tt.recorded, got, got.Message(), tt.want, tt.permanent, tt.message)
		}
		if k := ShortfallKindOf(got.Message()); k != got.Kind {
			t.Errorf("kind read back from %q is %q, want %q", got.Message(), k, got.Kind)
		}
	}
}

func TestNoCapacityMessage(t *testing.T) {
	t.Parallel()
	if got := NoCapacity("zone-a", 0, 2, "agent a1 has 0.5 free cores, needs 1").Message(); got != "no_capacity: zone-a: agent a1 has 0.5 free cores, needs 1" {
		t.Errorf("message %q", got)
	}
	if got := NoCapacity("zone-a", 1, 3, "agent a1 has 0 free cores, needs 1").Message(); got != "no_capacity: zone-a: room for 1 of the 3 sessions missing, then agent a1 has 0 free cores, needs 1" {
		t.Errorf("message %q", got)
	}
}

func TestRoomInZone(t *testing.T) {
	t.Parallel()
	half := Resources{MilliCores: 500, MemoryMB: 100}
	zone := func(lb LoadBalancing, agents ...Agent) Zone {
		return Zone{Name: "z", Known: true, LoadBalancing: lb, Agents: agents}
	}
	agent := func(name string, cores int64, used int64, labels ...string) Agent {
		return Agent{ID: name, Name: name, Capacity: Resources{MilliCores: cores * 1000, MemoryMB: 4096},
			Used: Resources{MilliCores: used}, Labels: labels}
	}
	tests := []struct {
		name      string
		zone      Zone
		pending   []Resources
		demand    Demand
		limit     int
		wantRoom  int
		wantShort string
	}{
		{"room up to the limit", zone(LeastLoad, agent("a1", 4, 0)), nil, Demand{Need: half}, 3, 3, ""},
		{"room is the sum over agents", zone(LeastLoad, agent("a1", 1, 0), agent("a2", 1, 500)), nil, Demand{Need: half}, 10, 3,
			"agent a1 has 0 free cores, needs 0.5, agent a2 has 0 free cores, needs 0.5"},
		{"sessions waiting for an agent take their share first", zone(MostLoad, agent("a1", 2, 0)), []Resources{half, half, half}, Demand{Need: half}, 10, 1,
			"agent a1 has 0 free cores, needs 0.5"},
		{"an agent too small has no room", zone(LeastLoad, agent("a1", 1, 500)), nil, Demand{Need: Resources{MilliCores: 1000}}, 2, 0,
			"agent a1 has 0.5 free cores, needs 1"},
		{"labels rule agents out", zone(LeastLoad, agent("a1", 4, 0), agent("gpu", 4, 0, "gpu")), nil,
			Demand{Need: half, IncludeLabels: []string{"gpu"}}, 100, 8, "agent a1 lacks label gpu, agent gpu has 0 free cores, needs 0.5"},
		{"a zone without enabled agents", zone(LeastLoad), nil, Demand{Need: half}, 1, 0, "no enabled agents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := slices.Clone(tt.zone.Agents)
			room, short := RoomInZone(tt.zone, tt.pending, tt.demand, tt.limit)
			if room != tt.wantRoom || short != tt.wantShort {
				t.Errorf("RoomInZone = %d, %q; want %d, %q", room, short, tt.wantRoom, tt.wantShort)
			}
			if !slices.EqualFunc(before, tt.zone.Agents, func(a, b Agent) bool { return a.Used == b.Used }) {
				t.Error("RoomInZone changed the zone it was given")
			}
		})
	}
}

// TestPoolStaysShortWhileARetryIsMade: a retry on its way fills the deficit
// but not the pool; the status must not flap to filling and back (each
// flap would announce the shortfall again).
func TestPoolStaysShortWhileARetryIsMade(t *testing.T) {
	t.Parallel()
	s := PoolState{Desired: 1, WorkspaceEnabled: true, Members: making("retry"),
		Failures: FailureHistory{Consecutive: 2, LastAt: t0, Last: "provisioning_failed: container exited with code 1"}, Now: t0.Add(time.Second)}
	got := PlanPool(s, policy)
	if got.Status != PoolShortfall || got.Shortfall == nil || got.Shortfall.Kind != ShortProvisioningFailed || got.Create != 0 {
		t.Errorf("PlanPool = %+v, want still shortfall (provisioning_failed), nothing created", got)
	}
	s.Members = staged("retry")
	s.Failures = FailureHistory{} // a staged session ends the run of failures
	if got := PlanPool(s, policy); got.Status != PoolOK || got.Shortfall != nil {
		t.Errorf("PlanPool once staged = %+v, want ok", got)
	}
}
