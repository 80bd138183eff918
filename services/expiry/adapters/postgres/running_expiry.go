package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// EndSessionsPastTimeLimit ends one batch of running sessions whose
// session_time_limit (their user's effective group's, copied when it was
// requested) ran out at or before p.Cutoff, the pass's time:
// greenroom.session.expired, reason time_limit.
//
// full reports whether the batch was full, i.e. more may be due.
func (s *SessionTimers) EndSessionsPastTimeLimit(ctx context.Context, p app.TimerParams) (changed int, full bool, err error) {
	return s.endRunningSessions(ctx, p, selectRunningPastTimeLimit, domain.ReasonTimeLimit)
}

// EndSessionsPastKeepalive ends one batch of running sessions that had no
// keepalive (greenroom.session.keepalive, POST /api/v1/sessions/{id}/keepalive)
// within their keepalive_expiration before p.Cutoff, the pass's time, and
// are not past their time limit (EndSessionsPastTimeLimit runs first and
// takes those): greenroom.session.expired, reason keepalive.
//
// full reports whether the batch was full, i.e. more may be due.
func (s *SessionTimers) EndSessionsPastKeepalive(ctx context.Context, p app.TimerParams) (changed int, full bool, err error) {
	return s.endRunningSessions(ctx, p, selectRunningPastKeepalive, domain.ReasonKeepalive)
}

// endRunningSessions moves each running session selectBatch returns running →
// destroying and emits greenroom.session.expired with reason in the same
// transaction; the provisioner removes the container at once, which frees
// its agent's (or server's) capacity, and finishes destroying → destroyed.
// Should it never do so, the destroy is sent again after DestroyTimeout
// (RetryStuckDestroying). Its user already has the session, so no request
// is waiting on it and no session.failed is sent.
func (s *SessionTimers) endRunningSessions(ctx context.Context, p app.TimerParams,
	selectBatch func(context.Context, sessions.Queryer, app.TimerParams) ([]dueSession, error), reason string,
) (changed int, full bool, err error) {
	return s.fireBatch(ctx, p, selectBatch, func(ctx context.Context, tx *sqlx.Tx, d dueSession) (bool, error) {
		ok, err := announceExpired(ctx, tx, d, sessions.Running, reason, p)
		if err != nil {
			return false, fmt.Errorf("error ending running session %s (%s): %w", d.ID, reason, err)
		}
		if !ok {
			return false, nil // destroyed meanwhile; cannot happen under our lock
		}
		s.log.Info("running session ended",
			zap.String("session_id", d.ID), zap.String("request_id", d.RequestID.String),
			zap.String("reason", reason), zap.Time("expired_at", d.DueAt),
			zap.Duration("ran_for", p.Now.Sub(d.Since)))
		return true, nil
	})
}

// announceExpired moves due session d from `from` to destroying and emits
// greenroom.session.expired with reason, in tx, as p.Source; the
// provisioner removes the container. Its destroying timer
// (RetryStuckDestroying) runs on the sweeper's clock, so it starts at
// p.Now, not at PostgreSQL's now(). false when d left `from` meanwhile.
func announceExpired(ctx context.Context, tx *sqlx.Tx, d dueSession, from sessions.Status, reason string, p app.TimerParams) (bool, error) {
	_, err := sessions.Transition(ctx, tx, d.ID, from, sessions.Destroying, sessions.Change{})
	if errors.Is(err, sessions.ErrStale) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := touchDestroying(ctx, tx, d.ID, p.Now); err != nil {
		return false, err
	}
	_, err = outbox.Emit(ctx, tx, p.Source, events.TypeSessionExpired, events.TypeSessionExpired,
		events.SessionExpired{SessionID: d.ID, RequestID: d.RequestID.String, StagingConfigID: d.StagingConfigID.String, Reason: reason},
		d.RequestID.String)
	return err == nil, err
}
