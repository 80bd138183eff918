package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// RetryStuckDestroying asks again, once, for the destruction of one batch
// of sessions that have been in `destroying` since before p.Cutoff, longer
// than p.Timeout (the sweeper's DestroyTimeout): the destroy or expired
// event that put them there was dead-lettered, or the provisioner gave up
// on removing the container. The provisioner's
// destroy is idempotent (it removes the container if there is one and
// finishes destroying → destroyed), so asking again is always safe.
//
// Each retry restarts the session's timer (its updated_at) under the row
// lock, so a session is asked for at most once per DestroyTimeout however
// many replicas sweep. The event id is derived from the session and the
// DestroyTimeout-long time slot of p.Now (domain.DestroyRetryEventID), as
// a second line of defence: two retries of one session in one slot would
// be one row in the outbox
// (ON CONFLICT DO NOTHING) and one message in JetStream (Nats-Msg-Id).
//
// full reports whether the batch was full, i.e. more may be due.
func (s *SessionTimers) RetryStuckDestroying(ctx context.Context, p app.TimerParams) (changed int, full bool, err error) {
	now, timeout := p.Now, p.Timeout
	return s.fireBatch(ctx, p, selectStuckDestroying, func(ctx context.Context, tx *sqlx.Tx, d dueSession) (bool, error) {
		ok, err := touchDestroying(ctx, tx, d.ID, now)
		if err != nil || !ok {
			return false, err // !ok: destroyed meanwhile; cannot happen under our lock
		}
		ev, err := events.NewWithID(domain.DestroyRetryEventID(d.ID, now, timeout), p.Source, events.TypeSessionDestroy,
			events.SessionDestroy{SessionID: d.ID, Reason: domain.ReasonDestroyRetry})
		if err != nil {
			return false, err
		}
		if err := outbox.Enqueue(ctx, tx, events.TypeSessionDestroy, ev, d.RequestID.String); err != nil {
			return false, err
		}
		s.log.Warn("session stuck in destroying; destroy sent again",
			zap.String("session_id", d.ID), zap.String("request_id", d.RequestID.String),
			zap.String("staging_config_id", d.StagingConfigID.String),
			zap.Duration("age", now.Sub(d.Since)), zap.Duration("timeout", timeout))
		return true, nil
	})
}
