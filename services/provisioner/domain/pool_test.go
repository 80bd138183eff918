package domain

import (
	"slices"
	"testing"
	"time"
)

var (
	t0      = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	backoff = Backoff{Min: time.Second, Max: time.Minute}
)

func staged(ids ...string) []StagedSession {
	out := make([]StagedSession, len(ids))
	for i, id := range ids {
		out[i] = StagedSession{ID: id, StagedAt: t0.Add(time.Duration(i) * time.Minute)}
	}
	return out
}

func TestPlanPool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		state       PoolState
		wantCreate  int
		wantDestroy []string
		wantHeld    string
		wantStatus  PoolStatus
	}{
		{
			name:       "empty pool fills to desired",
			state:      PoolState{Desired: 3, WorkspaceEnabled: true, RefillBudget: 10},
			wantCreate: 3, wantStatus: PoolFilling,
		},
		{
			name:       "sessions provisioning count towards the pool",
			state:      PoolState{Desired: 3, WorkspaceEnabled: true, Provisioning: 2, Staged: staged("a"), RefillBudget: 10},
			wantCreate: 0, wantStatus: PoolFilling,
		},
		{
			name:       "a full pool is ok",
			state:      PoolState{Desired: 2, WorkspaceEnabled: true, Staged: staged("a", "b")},
			wantStatus: PoolOK,
		},
		{
			name:       "an assigned session is replaced",
			state:      PoolState{Desired: 2, WorkspaceEnabled: true, Staged: staged("b"), RefillBudget: 10},
			wantCreate: 1, wantStatus: PoolFilling,
		},
		{
			name:        "lowering desired destroys the newest staged first",
			state:       PoolState{Desired: 1, WorkspaceEnabled: true, Staged: staged("old", "mid", "new")},
			wantDestroy: []string{"new", "mid"}, wantStatus: PoolOK,
		},
		{
			name:        "provisioning sessions are not destroyed; the excess is taken from staged ones",
			state:       PoolState{Desired: 1, WorkspaceEnabled: true, Provisioning: 2, Staged: staged("a", "b")},
			wantDestroy: []string{"b", "a"}, wantStatus: PoolFilling,
		},
		{
			name:        "a deleted config shrinks to nothing",
			state:       PoolState{Desired: 5, Deleted: true, WorkspaceEnabled: true, Staged: staged("a", "b")},
			wantDestroy: []string{"b", "a"}, wantStatus: PoolOK,
		},
		{
			name:       "the refill budget bounds creation",
			state:      PoolState{Desired: 5, WorkspaceEnabled: true, RefillBudget: 2, Now: t0},
			wantCreate: 2, wantHeld: "budget", wantStatus: PoolFilling,
		},
		{
			name:     "a spent budget creates nothing",
			state:    PoolState{Desired: 5, WorkspaceEnabled: true, RefillBudget: 0, Now: t0},
			wantHeld: "budget", wantStatus: PoolFilling,
		},
		{
			name:     "a disabled workspace creates nothing and is a shortfall",
			state:    PoolState{Desired: 2, WorkspaceEnabled: false, RefillBudget: 10},
			wantHeld: "workspace_disabled", wantStatus: PoolShortfall,
		},
		{
			name: "after a failure the pool waits out the backoff",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, RefillBudget: 10,
				Failures: FailureHistory{Consecutive: 1, LastAt: t0}, Now: t0.Add(500 * time.Millisecond)},
			wantHeld: "backoff", wantStatus: PoolShortfall,
		},
		{
			name: "once the backoff passed it tries again, still short",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, RefillBudget: 10,
				Failures: FailureHistory{Consecutive: 1, LastAt: t0}, Now: t0.Add(2 * time.Second)},
			wantCreate: 2, wantStatus: PoolShortfall,
		},
		{
			name: "repeated failures back off longer",
			state: PoolState{Desired: 2, WorkspaceEnabled: true, RefillBudget: 10,
				Failures: FailureHistory{Consecutive: 4, LastAt: t0}, Now: t0.Add(5 * time.Second)},
			wantHeld: "backoff", wantStatus: PoolShortfall,
		},
		{
			name: "failures do not matter to a full pool",
			state: PoolState{Desired: 1, WorkspaceEnabled: true, Staged: staged("a"),
				Failures: FailureHistory{Consecutive: 3, LastAt: t0}, Now: t0},
			wantStatus: PoolOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := PlanPool(tt.state, backoff)
			if got.Create != tt.wantCreate || !slices.Equal(got.Destroy, tt.wantDestroy) || got.HeldBack != tt.wantHeld || got.Status != tt.wantStatus {
				t.Errorf("PlanPool = create %d destroy %v held %q status %s; want create %d destroy %v held %q status %s",
					got.Create, got.Destroy, got.HeldBack, got.Status, tt.wantCreate, tt.wantDestroy, tt.wantHeld, tt.wantStatus)
			}
			if got.HeldBack != "" && got.HeldBack != "workspace_disabled" && !got.RetryAt.After(tt.state.Now) {
				t.Errorf("held back (%s) without a retry time after now: %v", got.HeldBack, got.RetryAt)
			}
		})
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
