package domain

import (
	"testing"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Each session a pass destroys is destroyed for what made the plan give
// it up, so that its session.destroyed says shrunk, rolled or deleted.
func TestEachSessionAPoolDestroysSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		state   PoolState
		destroy string
		want    string
	}{
		{"a fresh staged session beyond the target is shrunk",
			PoolState{Desired: 1, Members: staged("s1", "s2")}, "s2", events.DestroyReasonPoolShrink},
		{"a fresh session still being made beyond the target is shrunk",
			PoolState{Desired: 1, Members: members(staged("s1"), making("m1"))}, "m1", events.DestroyReasonPoolShrink},
		{"a stale staged session is rolled",
			PoolState{Desired: 1, Members: members(stale(staged("s1")), staged("s2"))}, "s1", events.DestroyReasonPoolRoll},
		{"a stale session still being made is rolled",
			PoolState{Desired: 1, Members: members(staged("s1"), stale(making("m1")))}, "m1", events.DestroyReasonPoolRoll},
		{"an unclaimable session is rolled",
			PoolState{Desired: 1, Members: unclaimable(staged("s1"))}, "s1", events.DestroyReasonPoolRoll},
		{"every session of a deleted staging config is deleted, fresh",
			PoolState{Desired: 1, Deleted: true, Members: staged("s1")}, "s1", events.DestroyReasonStagingConfigDeleted},
		{"every session of a deleted staging config is deleted, stale",
			PoolState{Desired: 1, Deleted: true, Members: stale(staged("s1"))}, "s1", events.DestroyReasonStagingConfigDeleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The case's session is one the plan destroys.
			plan := PlanPool(tc.state, policy)
			found := false
			for _, id := range plan.Destroy {
				found = found || id == tc.destroy
			}
			if !found {
				t.Fatalf("the plan destroys %v, not %s", plan.Destroy, tc.destroy)
			}
			if got := tc.state.DestroyReason(tc.destroy); got != tc.want {
				t.Errorf("DestroyReason(%s) = %q, want %q", tc.destroy, got, tc.want)
			}
			if c := events.DestroyCause(tc.state.DestroyReason(tc.destroy)); c == events.CauseOther {
				t.Errorf("the reason has no cause")
			}
		})
	}
}
