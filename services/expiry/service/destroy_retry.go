package service

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
)

// ReasonDestroyRetry is the reason of the greenroom.session.destroy the
// sweeper sends again for a session stuck in destroying.
const ReasonDestroyRetry = "destroy_retry"

// retryStuckDestroying asks again, once, for the destruction of one batch
// of sessions that have been in `destroying` longer than DestroyTimeout at
// now: the destroy or expired event that put them there was dead-lettered,
// or the provisioner gave up on removing the container. The provisioner's
// destroy is idempotent (it removes the container if there is one and
// finishes destroying → destroyed), so asking again is always safe.
//
// Each retry restarts the session's timer (its updated_at) under the row
// lock, so a session is asked for at most once per DestroyTimeout however
// many replicas sweep. The event id is derived from the session and the
// DestroyTimeout-long time slot of now, as a second line of defence: two
// retries of one session in one slot would be one row in the outbox
// (ON CONFLICT DO NOTHING) and one message in JetStream (Nats-Msg-Id).
//
// full reports whether the batch was full, i.e. more may be due.
func (s *Sweeper) retryStuckDestroying(ctx context.Context, now time.Time) (changed int, full bool, err error) {
	timeout := s.cfg.DestroyTimeout
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		due, err := selectStuckDestroying(ctx, tx, dueParams{Cutoff: now.Add(-timeout), Limit: s.cfg.BatchSize})
		if err != nil {
			return err
		}
		full = len(due) == s.cfg.BatchSize
		for _, d := range due {
			ok, err := touchDestroying(ctx, tx, d.ID, now)
			if err != nil {
				return err
			}
			if !ok {
				continue // destroyed meanwhile; cannot happen under our lock
			}
			ev, err := events.NewWithID(destroyRetryEventID(d.ID, now, timeout), s.cfg.Source, events.TypeSessionDestroy,
				events.SessionDestroy{SessionID: d.ID, Reason: ReasonDestroyRetry})
			if err != nil {
				return err
			}
			if err := outbox.Enqueue(ctx, tx, events.TypeSessionDestroy, ev, d.RequestID.String); err != nil {
				return err
			}
			s.log.Warn("session stuck in destroying; destroy sent again",
				zap.String("session_id", d.ID), zap.String("request_id", d.RequestID.String),
				zap.String("staging_config_id", d.StagingConfigID.String),
				zap.Duration("age", now.Sub(d.Since)), zap.Duration("timeout", timeout))
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return changed, full, nil
}

// destroyRetryEventID names the retry of session id's destroy in the
// timeout-long time slot holding now.
func destroyRetryEventID(id string, now time.Time, timeout time.Duration) string {
	return fmt.Sprintf("destroy-retry-%s-%d", id, now.UnixNano()/int64(timeout))
}
