package app

import (
	"context"
	"time"
)

// SessionTimers fires the session timers where the sessions are
// (adapters/postgres.SessionTimers, in PostgreSQL). Each method fires one
// batch of one timer in one transaction: it takes at most p.Limit due
// sessions that no other transaction holds, changes each and announces
// it through the outbox in that transaction. changed counts the sessions
// it changed; full reports that the batch was full, so more may be due.
// On an error nothing of the batch is changed.
type SessionTimers interface {
	// FailStuckProvisioning fails sessions in `provisioning` since before
	// p.Cutoff: greenroom.session.failed and greenroom.session.expired,
	// reason provisioning_timeout.
	FailStuckProvisioning(ctx context.Context, p TimerParams) (changed int, full bool, err error)
	// ExpireStagedSessions moves staged sessions whose expiration ran out
	// at or before p.Cutoff to destroying: greenroom.session.expired,
	// reason staged_expired.
	ExpireStagedSessions(ctx context.Context, p TimerParams) (changed int, full bool, err error)
	// FailStuckAssigning fails sessions claimed before p.Cutoff and still
	// in `assigning`: greenroom.session.failed (assign_failed) and
	// greenroom.session.expired (assign_timeout).
	FailStuckAssigning(ctx context.Context, p TimerParams) (changed int, full bool, err error)
	// EndSessionsPastTimeLimit moves running sessions whose time limit ran
	// out at or before p.Cutoff to destroying: greenroom.session.expired,
	// reason time_limit.
	EndSessionsPastTimeLimit(ctx context.Context, p TimerParams) (changed int, full bool, err error)
	// EndSessionsPastKeepalive moves the other running sessions that are
	// due at p.Cutoff (their keepalive deadline passed) to destroying:
	// greenroom.session.expired, reason keepalive.
	EndSessionsPastKeepalive(ctx context.Context, p TimerParams) (changed int, full bool, err error)
	// RetryStuckDestroying sends greenroom.session.destroy (reason
	// destroy_retry) again for sessions in `destroying` since before
	// p.Cutoff, and restarts their timer at p.Now.
	RetryStuckDestroying(ctx context.Context, p TimerParams) (changed int, full bool, err error)
}

// TimerParams are what one batch of one timer needs.
type TimerParams struct {
	// Now is the pass's time on the sweeper's clock: ages are measured up
	// to it and restarted timers start at it.
	Now time.Time
	// Cutoff: sessions whose timer ran out at or before it are due
	// (domain.Cutoff).
	Cutoff time.Time
	// Timeout is the timer's timeout, zero for a deadline; failures quote
	// it, and it is the length of a retried destroy's time slot.
	Timeout time.Duration
	// Limit is the most sessions the batch changes (SweeperConfig.BatchSize).
	Limit int
	// Source is the CloudEvents source of the events announcing each
	// change.
	Source string
}
