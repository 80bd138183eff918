package service

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

const reasonAssignTimeout = events.ExpiredAssigning // "assign_timeout"

// failStuckAssigning fails one batch of sessions claimed for a user more
// than AssignTimeout ago at now and still in `assigning`: the provisioner
// never reported the outcome of their assign command (its
// session.assigned was dead-lettered, say, or the provisioner is down).
// For each it announces, in the same transaction:
//   - greenroom.session.failed (reason assign_failed) with the request_id
//     the claim recorded, so the user's request ends instead of hanging;
//   - greenroom.session.expired (reason assign_timeout), on which the
//     provisioner removes the container, which is nobody's now.
//
// A claimed session already had its replacement requested by the staging
// pool, so no refill is owed. An assign command that completes after this
// finds the session failed, and the provisioner removes its container.
//
// full reports whether the batch was full, i.e. more may be due.
func (s *Sweeper) failStuckAssigning(ctx context.Context, now time.Time) (changed int, full bool, err error) {
	timeout := s.cfg.AssignTimeout
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		due, err := selectStuckAssigning(ctx, tx, dueParams{Cutoff: now.Add(-timeout), Limit: s.cfg.BatchSize})
		if err != nil {
			return err
		}
		full = len(due) == s.cfg.BatchSize
		for _, d := range due {
			detail := fmt.Sprintf("no outcome within %s", timeout)
			moved, err := s.failTimedOut(ctx, tx, timedOut{
				SessionID: d.ID, RequestID: d.RequestID.String, StagingConfigID: d.StagingConfigID.String,
				From: sessions.Assigning, Reason: events.ReasonAssignFailed, Expired: reasonAssignTimeout,
				Recorded: detail,
				Detail: fmt.Sprintf("%s: session %s was still assigning %s after it was claimed; its assign command never reported back",
					detail, d.ID, now.Sub(d.Since).Round(time.Second)),
			})
			if err != nil {
				return err
			}
			if !moved {
				continue
			}
			requestID := d.RequestID.String
			s.log.Warn("session stuck in assigning failed",
				zap.String("session_id", d.ID), zap.String("request_id", requestID),
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
