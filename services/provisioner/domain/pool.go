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
	// PoolShortfall means the pool cannot reach its desired size now; the
	// plan's Shortfall says why.
	PoolShortfall PoolStatus = "shortfall"
)

// PoolMember is a session of a pool that is being made or is staged: the
// sessions a reconcile pass may keep or destroy. Sessions being claimed
// (assigning) are never members, so a pass never destroys one.
type PoolMember struct {
	ID string
	// Staged is false while the session's container is still being made.
	Staged bool
	// Since is when the session was created (provisioning) or staged.
	Since time.Time
	// Stale means its container was made with another revision of the
	// pool's configuration than the current one (PoolRevision): a field of
	// the workspace that shapes containers, a permission of the staging
	// config or a domain of its zone changed since. A stale staged session
	// is still handed to users until a fresh one replaces it (the rolling
	// surge of PlanPool); a stale one still being made is given up.
	Stale bool
	// Unclaimable means its container was started with other permissions
	// than the staging config has now. The claim matches the container's
	// permissions, so it would never be handed to anyone: it is destroyed
	// at once, roll or not. Such a session is stale too.
	Unclaimable bool
}

// fresh reports whether m was made with the pool's current configuration.
func (m PoolMember) fresh() bool { return !m.Stale && !m.Unclaimable }

// FailureHistory is what a pool's recent failed creations say about
// retrying: the failures since its last session that reached staged.
type FailureHistory struct {
	// Consecutive counts sessions of the pool that failed before being
	// staged, since the last one that was staged.
	Consecutive int
	// LastAt is when the last of them failed.
	LastAt time.Time
	// Last is the failure_reason of the last of them.
	Last string
}

// PoolState is a staging config and its sessions as one reconcile pass
// sees them, under the config's row lock.
type PoolState struct {
	ConfigID string
	Zone     string
	// Workspace is the workspace's name, for messages.
	Workspace string
	Desired   int
	// Deleted pools shrink to nothing.
	Deleted          bool
	WorkspaceEnabled bool
	// Members are the pool's provisioning and staged sessions.
	Members []PoolMember
	// Destroying counts the pool's sessions being destroyed: their
	// containers still hold their agents' capacity for a moment.
	Destroying int
	Failures   FailureHistory
	// Room is how many more of the pool's sessions fit on the enabled
	// agents of its zone now, after the sessions waiting there to be
	// placed, counted up to Deficit(); RoomShort says what stops more
	// (e.g. "agent a1 has 0.5 free cores, needs 1"). Only read when
	// Deficit() > 0 and the workspace is enabled.
	Room      int
	RoomShort string
	// CapacityWaits counts the passes in a row that found no room for
	// what the pool lacks; it spaces out the retries of such a pool.
	CapacityWaits int
	// RefillBudget is how many more staged sessions may be provisioning at
	// once over every pool (the bound that keeps refills from starving
	// users' on-demand requests). Only read when Deficit() > 0.
	RefillBudget int
	// Forced means a configuration change asked for this pass: whatever
	// the pool's failures, it tries again now, once.
	Forced bool
	Now    time.Time
}

// Target is the number of sessions the pool should hold.
func (s PoolState) Target() int {
	if s.Deleted {
		return 0
	}
	return s.Desired
}

// Current counts the sessions the pool holds or is making with its
// current configuration: stale ones do not count, so a pool being rolled
// lacks their replacements.
func (s PoolState) Current() int {
	n := 0
	for _, m := range s.Members {
		if m.fresh() {
			n++
		}
	}
	return n
}

// Deficit is how many sessions the pool lacks.
func (s PoolState) Deficit() int { return max(0, s.Target()-s.Current()) }

// HoldReason says why a pass created fewer sessions than its pool lacks.
type HoldReason string

const (
	// HeldForBudget: the refill budget over every pool is spent.
	HeldForBudget HoldReason = "budget"
	// HeldForBackoff: the pool's last creations failed; it waits before
	// trying again.
	HeldForBackoff HoldReason = "backoff"
	// HeldForCapacity: no enabled agent of the zone has room.
	HeldForCapacity HoldReason = "no_capacity"
	// HeldForDestroys: the room is held by the pool's own sessions being
	// destroyed; their end triggers the next pass.
	HeldForDestroys HoldReason = "destroying"
	// HeldForRoll: the room is held by the pool's stale staged sessions,
	// which keep serving users until their replacements are staged; each
	// replacement staged releases one of them, and its room.
	HeldForRoll HoldReason = "rolling"
	// HeldForDisabledWorkspace: the workspace is disabled.
	HeldForDisabledWorkspace HoldReason = "workspace_disabled"
)

// PoolPlan is what one reconcile pass does to a pool.
type PoolPlan struct {
	// Destroy lists the sessions to destroy, in order: unclaimable and
	// stale ones still provisioning (provisioning before staged, newest
	// first), then stale staged ones the roll releases (oldest first),
	// then fresh ones beyond the target (provisioning before staged,
	// newest first).
	Destroy []string
	// Create is how many staged sessions to start provisioning.
	Create int
	// RetryAt, when set, is when creation held back now may go ahead. A
	// pool waiting out a permanent failure has none: a configuration
	// change, or the periodic pass once its backoff has passed, retries it.
	RetryAt time.Time
	// HeldBack says why fewer than Deficit() are created now; empty when
	// nothing was held back.
	HeldBack HoldReason
	// Status is the pool's status after the pass.
	Status PoolStatus
	// Shortfall, when the status is shortfall, says why.
	Shortfall *Shortfall
}

// Backoff spaces out retries, so a broken image or a full zone never turns
// into a create/destroy loop.
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

// RetryPolicy is how a short pool retries: transient causes (an engine
// that did not answer, a container that never became ready, a full zone)
// soon and then less often; permanent ones (a missing image) rarely, since
// only a change can fix them.
type RetryPolicy struct {
	Transient Backoff
	Permanent Backoff
}

// BudgetRetry is how soon a pass held back by the refill budget tries
// again, should no refill finishing trigger it earlier.
const BudgetRetry = time.Second

// PlanPool decides one reconcile pass. Deletions come first: sessions no
// user can be given (unclaimable, or stale and still provisioning), then
// the stale staged sessions a roll no longer needs, then what exceeds the
// target — sessions still provisioning before staged ones (a container not
// made yet costs least to give up), newest first. Then it creates what is
// missing, unless the workspace is disabled, the pool is backing off after
// failed creations, no agent of the zone has room, or the refill budget is
// spent; a pool that cannot reach its target says why in Shortfall.
//
// A configuration change rolls the pool by a surge: stale sessions do not
// count towards the target, so their replacements are created (within
// the room and the refill budget) while the stale staged ones stay
// claimable; each fresh session staged releases one stale one. Claims
// take the oldest staged session first, so during a roll users get the
// stale ones first. When the zone has no room for the surge and nothing
// fresh is on its way, one stale session per pass is destroyed to make
// room (replace in place), so a roll never gets stuck.
func PlanPool(s PoolState, policy RetryPolicy) PoolPlan {
	var p PoolPlan
	c := censusOf(s)
	p.Destroy = c.destroyOrder(s.Target())
	if k := c.kept(p); s.Failures.Consecutive > 0 && k.freshStaged < s.Target() {
		// Still short since creations failed, also while a retry is on
		// its way or stale sessions still serve: the pool stays in
		// shortfall until a fresh session is staged.
		p.Shortfall = ShortfallOfFailure(s.Failures.Last)
	}
	if deficit := s.Deficit(); deficit > 0 {
		planCreate(&p, s, c, deficit, policy)
	}
	p.Status = poolStatus(s, c, p)
	return p
}

// poolCensus sorts a pool's members by what a pass may do with them.
type poolCensus struct {
	// fresh are the members made with the current configuration.
	fresh []PoolMember
	// rolling are the stale staged members a user may still be given,
	// oldest first.
	rolling []PoolMember
	// doomed are the members no user will be given: unclaimable ones,
	// and stale ones still being made.
	doomed []PoolMember
}

func censusOf(s PoolState) poolCensus {
	var c poolCensus
	for _, m := range s.Members {
		switch {
		case m.fresh():
			c.fresh = append(c.fresh, m)
		case m.Staged && !m.Unclaimable:
			c.rolling = append(c.rolling, m)
		default:
			c.doomed = append(c.doomed, m)
		}
	}
	// Provisioning before staged, newest first: the order of giving up.
	giveUpOrder := func(ms []PoolMember) {
		slices.SortStableFunc(ms, func(x, y PoolMember) int {
			if x.Staged != y.Staged {
				if !x.Staged {
					return -1
				}
				return 1
			}
			return -olderFirst(x, y)
		})
	}
	giveUpOrder(c.fresh)
	giveUpOrder(c.doomed)
	slices.SortStableFunc(c.rolling, olderFirst)
	return c
}

// olderFirst orders members by Since, oldest first.
func olderFirst(x, y PoolMember) int {
	if c := cmp.Compare(x.Since.UnixNano(), y.Since.UnixNano()); c != 0 {
		return c
	}
	// Sessions created in one pass share its timestamp; their ids
	// (UUIDv7) still sort by creation.
	return cmp.Compare(x.ID, y.ID)
}

// freshStaged counts the fresh members that are staged.
func (c poolCensus) freshStaged() int {
	n := 0
	for _, m := range c.fresh {
		if m.Staged {
			n++
		}
	}
	return n
}

// destroyOrder lists the sessions a pass destroys: every doomed one; the
// stale staged ones beyond what the pool still lacks in fresh staged ones
// (a roll keeps max(0, min(stale staged, target − fresh staged)) of them);
// and the fresh ones beyond the target.
func (c poolCensus) destroyOrder(target int) []string {
	var out []string
	for _, m := range c.doomed {
		out = append(out, m.ID)
	}
	keep := max(0, min(len(c.rolling), target-c.freshStaged()))
	for _, m := range c.rolling[:len(c.rolling)-keep] {
		out = append(out, m.ID)
	}
	for _, m := range c.fresh[:max(0, len(c.fresh)-target)] {
		out = append(out, m.ID)
	}
	return out
}

// poolKept counts what a pool keeps after a plan's destroys.
type poolKept struct {
	freshStaged, freshMaking int
	// rolling are the stale staged sessions kept, oldest first.
	rolling []PoolMember
}

func (c poolCensus) kept(p PoolPlan) poolKept {
	var k poolKept
	for _, m := range c.fresh {
		switch {
		case slices.Contains(p.Destroy, m.ID):
		case m.Staged:
			k.freshStaged++
		default:
			k.freshMaking++
		}
	}
	for _, m := range c.rolling {
		if !slices.Contains(p.Destroy, m.ID) {
			k.rolling = append(k.rolling, m)
		}
	}
	return k
}

// planCreate decides how many of the deficit to create now, and why not
// more. What stops the pool now (a disabled workspace, no room) is named
// before what stopped it last time (its failed creations, p.Shortfall on
// entry).
func planCreate(p *PoolPlan, s PoolState, c poolCensus, deficit int, policy RetryPolicy) {
	if !s.WorkspaceEnabled {
		p.HeldBack = HeldForDisabledWorkspace
		p.Shortfall = WorkspaceDisabled(s.Workspace)
		return
	}
	if failed := p.Shortfall; failed != nil {
		b := policy.Transient
		if failed.Permanent {
			b = policy.Permanent
		}
		if retryAt := s.Failures.LastAt.Add(b.Delay(s.Failures.Consecutive, s.ConfigID)); !s.Forced && s.Now.Before(retryAt) {
			p.HeldBack = HeldForBackoff
			if !failed.Permanent {
				p.RetryAt = retryAt
			}
			if s.Room < deficit {
				p.Shortfall = NoCapacity(s.Zone, s.Room, deficit, s.RoomShort)
			}
			return
		}
	}
	n := min(deficit, max(0, s.Room))
	if n < deficit {
		p.RetryAt = s.Now.Add(policy.Transient.Delay(s.CapacityWaits+1, s.ConfigID))
		k := c.kept(*p)
		switch {
		case s.Destroying > 0 || len(p.Destroy) > 0:
			// The room is held by containers on their way out; their end
			// triggers the next pass.
			p.HeldBack = HeldForDestroys
		case len(k.rolling) > 0 && (n > 0 || k.freshMaking > 0):
			// The stale sessions hold the room; the replacements on
			// their way release them one by one as they are staged.
			p.HeldBack = HeldForRoll
		case len(k.rolling) > 0:
			// No room for a surge and nothing on its way to release a
			// stale session: replace one in place. Its end triggers the
			// next pass, which has room for its replacement.
			p.Destroy = append(p.Destroy, k.rolling[0].ID)
			p.HeldBack = HeldForDestroys
		default:
			p.HeldBack = HeldForCapacity
			p.Shortfall = NoCapacity(s.Zone, n, deficit, s.RoomShort)
		}
	}
	p.Create = min(n, max(0, s.RefillBudget))
	if p.Create < n {
		p.HeldBack = HeldForBudget
		if p.RetryAt.IsZero() {
			p.RetryAt = s.Now.Add(BudgetRetry)
		}
	}
}

func poolStatus(s PoolState, c poolCensus, p PoolPlan) PoolStatus {
	if p.Shortfall != nil {
		return PoolShortfall
	}
	if k := c.kept(p); k.freshStaged == s.Target() && k.freshMaking == 0 && len(k.rolling) == 0 && p.Create == 0 {
		return PoolOK
	}
	return PoolFilling
}
