package domain

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// rollSim plays a pool through a roll, one reconcile pass per step: the
// plan's destroys leave at once but hold their room until the next step,
// its creations are made one per step (the oldest first), and a claim
// takes the oldest staged session when asked, as the claim does.
type rollSim struct {
	t        *testing.T
	desired  int
	capacity int // sessions the zone has room for
	budget   int

	members    []PoolMember
	destroying int
	now        time.Time
	next       int
}

func (r *rollSim) add(staged, isStale bool) {
	r.next++
	r.members = append(r.members, PoolMember{ID: fmt.Sprintf("s%03d", r.next), Staged: staged, Since: r.now, Stale: isStale})
}

func (r *rollSim) staged() int {
	n := 0
	for _, m := range r.members {
		if m.Staged {
			n++
		}
	}
	return n
}

// pass runs one reconcile pass and returns its plan.
func (r *rollSim) pass() PoolPlan {
	r.now = r.now.Add(time.Second)
	s := PoolState{Desired: r.desired, WorkspaceEnabled: true, Members: slices.Clone(r.members),
		Destroying: r.destroying, RefillBudget: r.budget, Now: r.now, RoomShort: "full"}
	if d := s.Deficit(); d > 0 {
		s.Room = max(0, min(d, r.capacity-len(r.members)-r.destroying))
	}
	p := PlanPool(s, policy)
	r.members = slices.DeleteFunc(r.members, func(m PoolMember) bool { return slices.Contains(p.Destroy, m.ID) })
	r.destroying += len(p.Destroy)
	for range p.Create {
		r.add(false, false)
	}
	if len(r.members)+r.destroying > r.capacity {
		r.t.Fatalf("%d sessions and %d being destroyed in a zone with room for %d", len(r.members), r.destroying, r.capacity)
	}
	return p
}

// world lets time pass: destroys finish, the oldest session being made is
// staged.
func (r *rollSim) world() {
	r.destroying = 0
	for i, m := range r.members {
		if !m.Staged {
			r.members[i].Staged, r.members[i].Since = true, r.now
			return
		}
	}
}

// claim takes the oldest staged session, as sessions.ClaimStaged does.
func (r *rollSim) claim() PoolMember {
	best := -1
	for i, m := range r.members {
		if m.Staged && (best < 0 || olderFirst(m, r.members[best]) < 0) {
			best = i
		}
	}
	if best < 0 {
		r.t.Fatal("nothing staged to claim during the roll")
	}
	m := r.members[best]
	r.members = slices.Delete(r.members, best, best+1)
	return m
}

func (r *rollSim) done() bool {
	return !slices.ContainsFunc(r.members, func(m PoolMember) bool { return m.Stale }) && r.staged() == r.desired && len(r.members) == r.desired
}

// TestRollingSurgeKeepsThePoolServing plays rolls of a pool of 5 to the
// end: with room for the surge the pool never has fewer than 5 staged
// sessions (counting the stale ones users are still given); with no room
// beyond the pool it replaces in place, never more than one missing; and
// claims during the roll take stale sessions first. Every roll ends with
// every session fresh and the pool ok.
func TestRollingSurgeKeepsThePoolServing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		capacity  int
		budget    int
		claimEach int // claim one staged session every claimEach steps (0: never)
		minStaged int
	}{
		{"room for a full surge", 20, 10, 0, 5},
		{"room for two more, refill budget 4", 7, 4, 0, 5},
		{"no room beyond the pool", 5, 4, 0, 4},
		{"room for a full surge under claims", 20, 4, 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &rollSim{t: t, desired: 5, capacity: tc.capacity, budget: tc.budget, now: t0}
			for range 5 {
				r.add(true, true)
			}
			var claimedStale, claimedFresh int
			steps := 0
			for ; !r.done(); steps++ {
				if steps > 100 {
					t.Fatalf("the roll is stuck: %+v", r.members)
				}
				p := r.pass()
				if p.Shortfall != nil {
					t.Errorf("step %d: shortfall %s during a roll", steps, p.Shortfall.Message())
				}
				if got := r.staged(); got < tc.minStaged {
					t.Fatalf("step %d: %d staged sessions, want at least %d", steps, got, tc.minStaged)
				}
				if tc.claimEach > 0 && steps%tc.claimEach == 0 && steps < 20 {
					staleLeft := slices.ContainsFunc(r.members, func(m PoolMember) bool { return m.Staged && m.Stale })
					switch m := r.claim(); {
					case m.Stale:
						claimedStale++
					case staleLeft:
						t.Errorf("step %d: a claim took fresh session %s while stale ones were staged", steps, m.ID)
						fallthrough
					default:
						claimedFresh++
					}
				}
				r.world()
			}
			if p := r.pass(); p.Status != PoolOK || len(p.Destroy) != 0 || p.Create != 0 {
				t.Errorf("after the roll: %+v, want ok with nothing to do", p)
			}
			t.Logf("rolled in %d passes (%d stale and %d fresh sessions claimed)", steps, claimedStale, claimedFresh)
		})
	}
}

// TestRemovedContainersAreNotDeathsOfTheirPool: the words the audit and
// the engine watcher record for a container removed behind Greenroom's
// back are the ones the failure history leaves out; those of a container
// that ended on its own are not.
func TestRemovedContainersAreNotDeathsOfTheirPool(t *testing.T) {
	t.Parallel()
	removed := []ContainerVerdict{
		JudgeContainer(ContainerSighting{Listed: false}),
		JudgeContainer(ContainerSighting{Listed: true, State: "removing"}),
		JudgeContainerEvent(ContainerEvent{Action: ContainerDestroyed}),
	}
	for _, v := range removed {
		if !v.Gone || !slices.Contains(ContainerRemovedSightings, v.Seen) {
			t.Errorf("a removed container is recorded as %q, which is not in ContainerRemovedSightings %q", v.Seen, ContainerRemovedSightings)
		}
	}
	died := []ContainerVerdict{
		JudgeContainer(ContainerSighting{Listed: true, State: "exited", ExitCode: 1}),
		JudgeContainer(ContainerSighting{Listed: true, State: "dead"}),
		JudgeContainerEvent(ContainerEvent{Action: ContainerDied, ExitCode: 137, HasExitCode: true}),
		JudgeContainerEvent(ContainerEvent{Action: ContainerDied, OutOfMemory: true}),
	}
	for _, v := range died {
		if !v.Gone || slices.Contains(ContainerRemovedSightings, v.Seen) {
			t.Errorf("a container that died is recorded as %q, counted as removed", v.Seen)
		}
	}
}
