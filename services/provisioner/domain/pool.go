package domain

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strconv"
	"time"
)

// PoolStatus is a staging config's status as the API shows it.
type PoolStatus string

const (
	// PoolOK means exactly desired_sessions are staged.
	PoolOK PoolStatus = "ok"
	// PoolFilling means the pool is on its way to its desired size.
	PoolFilling PoolStatus = "filling"
	// PoolShortfall means the pool cannot reach its desired size: its last
	// provisioning attempts failed, or its workspace is disabled.
	PoolShortfall PoolStatus = "shortfall"
)

// StagedSession is a staged session a pool may destroy when it shrinks.
type StagedSession struct {
	ID       string
	StagedAt time.Time
}

// FailureHistory is what a pool's recent failed creations say about
// retrying: the failures since its last session that reached staged.
type FailureHistory struct {
	// Consecutive counts sessions of the pool that failed before being
	// staged, since the last one that was staged.
	Consecutive int
	// LastAt is when the last of them failed.
	LastAt time.Time
}

// PoolState is a staging config and its sessions as one reconcile pass
// sees them, under the config's row lock.
type PoolState struct {
	ConfigID string
	Desired  int
	// Deleted pools shrink to nothing.
	Deleted          bool
	WorkspaceEnabled bool
	// Provisioning counts sessions being created; they count towards the
	// pool as they will be staged soon.
	Provisioning int
	Staged       []StagedSession
	Failures     FailureHistory
	// RefillBudget is how many more staged sessions may be provisioning at
	// once over every pool (the bound that keeps refills from starving
	// users' on-demand requests). Only read when Deficit() > 0.
	RefillBudget int
	Now          time.Time
}

// Target is the number of sessions the pool should hold.
func (s PoolState) Target() int {
	if s.Deleted {
		return 0
	}
	return s.Desired
}

// Current counts the sessions the pool holds or is creating.
func (s PoolState) Current() int { return s.Provisioning + len(s.Staged) }

// Deficit is how many sessions the pool lacks.
func (s PoolState) Deficit() int { return max(0, s.Target()-s.Current()) }

// PoolPlan is what one reconcile pass does to a pool.
type PoolPlan struct {
	// Create is how many staged sessions to start provisioning.
	Create int
	// Destroy lists staged sessions to destroy, newest first.
	Destroy []string
	// RetryAt, when set, is when creation held back now may go ahead:
	// after the failure backoff, or when refill budget may have freed up.
	RetryAt time.Time
	// HeldBack says why fewer than Deficit() are created now: "backoff",
	// "budget" or "workspace_disabled"; empty when nothing was held back.
	HeldBack string
	// Status is the pool's status after the pass.
	Status PoolStatus
}

// Backoff spaces out refills of a pool whose creations keep failing, so a
// broken image or a full zone never turns into a create/destroy loop.
type Backoff struct {
	Min time.Duration
	Max time.Duration
}

// Delay is how long to wait after the n-th consecutive failure (n ≥ 1):
// Min doubled n-1 times, capped at Max, plus up to 20% jitter derived from
// seed so that pools failing together do not retry in lockstep — and the
// function stays pure.
func (b Backoff) Delay(n int, seed string) time.Duration {
	if n <= 0 {
		return 0
	}
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	h := fnv.New32a()
	_, _ = h.Write([]byte(seed + "/" + strconv.Itoa(n)))
	jitter := time.Duration(uint64(d) / 5 * uint64(h.Sum32()%1000) / 1000)
	return d + jitter
}

// BudgetRetry is how soon a pass held back by the refill budget tries
// again, should no refill finishing trigger it earlier.
const BudgetRetry = time.Second

// PlanPool decides one reconcile pass: destroy the newest staged sessions
// beyond the target (sessions being claimed are not staged and so never
// destroyed), and create what is missing unless the workspace is disabled,
// the pool is backing off after failures, or the refill budget is spent.
// Sessions still provisioning are never destroyed: once staged, a later
// pass shrinks the pool if it is still too large.
func PlanPool(s PoolState, b Backoff) PoolPlan {
	var p PoolPlan
	if excess := s.Current() - s.Target(); excess > 0 {
		staged := slices.Clone(s.Staged)
		slices.SortStableFunc(staged, func(x, y StagedSession) int { return cmp.Compare(y.StagedAt.UnixNano(), x.StagedAt.UnixNano()) })
		for _, st := range staged[:min(excess, len(staged))] {
			p.Destroy = append(p.Destroy, st.ID)
		}
	}
	if deficit := s.Deficit(); deficit > 0 {
		switch {
		case !s.WorkspaceEnabled:
			p.HeldBack = "workspace_disabled"
		case s.Failures.Consecutive > 0 && s.Now.Before(s.Failures.LastAt.Add(b.Delay(s.Failures.Consecutive, s.ConfigID))):
			p.HeldBack = "backoff"
			p.RetryAt = s.Failures.LastAt.Add(b.Delay(s.Failures.Consecutive, s.ConfigID))
		default:
			p.Create = min(deficit, max(0, s.RefillBudget))
			if p.Create < deficit {
				p.HeldBack = "budget"
				p.RetryAt = s.Now.Add(BudgetRetry)
			}
		}
	}
	p.Status = poolStatus(s, p)
	return p
}

func poolStatus(s PoolState, p PoolPlan) PoolStatus {
	switch {
	case len(s.Staged)-len(p.Destroy) == s.Target() && s.Provisioning == 0:
		return PoolOK
	case s.Deficit() > 0 && (!s.WorkspaceEnabled || s.Failures.Consecutive > 0):
		return PoolShortfall
	default:
		return PoolFilling
	}
}
