package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

const (
	reasonTimeLimit = events.ExpiredTimeLimit // "time_limit"
	reasonKeepalive = events.ExpiredKeepalive // "keepalive"
)

// endSessionsPastTimeLimit ends one batch of running sessions whose
// session_time_limit (their user's effective group's, copied when it was
// requested) ran out at now: greenroom.session.expired, reason time_limit.
//
// full reports whether the batch was full, i.e. more may be due.
func (s *Sweeper) endSessionsPastTimeLimit(ctx context.Context, now time.Time) (changed int, full bool, err error) {
	return s.endRunningSessions(ctx, now, selectRunningPastTimeLimit, reasonTimeLimit)
}

// endSessionsPastKeepalive ends one batch of running sessions that had no
// keepalive (greenroom.session.keepalive, POST /api/v1/sessions/{id}/keepalive)
// within their keepalive_expiration before now and are not past their time
// limit (endSessionsPastTimeLimit runs first and takes those):
// greenroom.session.expired, reason keepalive.
//
// full reports whether the batch was full, i.e. more may be due.
func (s *Sweeper) endSessionsPastKeepalive(ctx context.Context, now time.Time) (changed int, full bool, err error) {
	return s.endRunningSessions(ctx, now, selectRunningPastKeepalive, reasonKeepalive)
}

// endRunningSessions moves each running session selectBatch returns running →
// destroying and emits greenroom.session.expired with reason in the same
// transaction; the provisioner removes the container at once, which frees
// its agent's (or server's) capacity, and finishes destroying → destroyed.
// Should it never do so, the destroy is sent again after DestroyTimeout
// (retryStuckDestroying). Its user already has the session, so no request
// is waiting on it and no session.failed is sent.
func (s *Sweeper) endRunningSessions(ctx context.Context, now time.Time,
	selectBatch func(context.Context, sessions.Queryer, dueParams) ([]dueSession, error), reason string,
) (changed int, full bool, err error) {
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		due, err := selectBatch(ctx, tx, dueParams{Cutoff: now, Limit: s.cfg.BatchSize})
		if err != nil {
			return err
		}
		full = len(due) == s.cfg.BatchSize
		for _, d := range due {
			ok, err := s.announceExpired(ctx, tx, d, sessions.Running, reason, now)
			if err != nil {
				return fmt.Errorf("error ending running session %s (%s): %w", d.ID, reason, err)
			}
			if !ok {
				continue // destroyed meanwhile; cannot happen under our lock
			}
			s.log.Info("running session ended",
				zap.String("session_id", d.ID), zap.String("request_id", d.RequestID.String),
				zap.String("reason", reason), zap.Time("expired_at", d.DueAt),
				zap.Duration("ran_for", now.Sub(d.Since)))
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return changed, full, nil
}

// announceExpired moves due session d from `from` to destroying and emits
// greenroom.session.expired with reason, in tx; the provisioner removes
// the container. Its destroying timer (retryStuckDestroying) runs on this
// sweeper's clock, so it starts at now, not at PostgreSQL's now(). false
// when d left `from` meanwhile.
func (s *Sweeper) announceExpired(ctx context.Context, tx *sqlx.Tx, d dueSession, from sessions.Status, reason string, now time.Time) (bool, error) {
	_, err := sessions.Transition(ctx, tx, d.ID, from, sessions.Destroying, sessions.Change{})
	if errors.Is(err, sessions.ErrStale) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := touchDestroying(ctx, tx, d.ID, now); err != nil {
		return false, err
	}
	_, err = outbox.Emit(ctx, tx, s.cfg.Source, events.TypeSessionExpired, events.TypeSessionExpired,
		events.SessionExpired{SessionID: d.ID, RequestID: d.RequestID.String, StagingConfigID: d.StagingConfigID.String, Reason: reason},
		d.RequestID.String)
	return err == nil, err
}
