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
	reasonProvisioningTimeout = events.ExpiredProvisioning // "provisioning_timeout"
	reasonStagedExpired       = events.ExpiredStaged       // "staged_expired"
)

// failStuckProvisioning fails one batch of sessions that have been in
// `provisioning` longer than ProvisioningTimeout at now. For each it
// announces, in the same transaction:
//   - greenroom.session.failed (reason provisioning_timeout), the outcome a
//     waiting requester receives — on-demand sessions carry the request_id;
//   - greenroom.session.expired (reason provisioning_timeout), on which the
//     provisioner removes whatever container it may have made meanwhile.
//
// full reports whether the batch was full, i.e. more may be due.
func (s *Sweeper) failStuckProvisioning(ctx context.Context, now time.Time) (changed int, full bool, err error) {
	timeout := s.cfg.ProvisioningTimeout
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		due, err := selectStuckProvisioning(ctx, tx, dueParams{Cutoff: now.Add(-timeout), Limit: s.cfg.BatchSize})
		if err != nil {
			return err
		}
		full = len(due) == s.cfg.BatchSize
		for _, d := range due {
			detail := fmt.Sprintf("provisioning timed out after %s", timeout)
			_, err := sessions.Transition(ctx, tx, d.ID, sessions.Provisioning, sessions.Failed,
				sessions.Change{FailureReason: sessions.Ptr(events.RecordedFailure(events.ReasonProvisioningTimeout, detail))})
			if errors.Is(err, sessions.ErrStale) {
				// Cannot happen while we hold the row lock; if it does, the
				// session has moved on and its timer no longer applies.
				continue
			}
			if err != nil {
				return fmt.Errorf("error failing session %s: %w", d.ID, err)
			}
			requestID := d.RequestID.String
			if _, err := outbox.Emit(ctx, tx, s.cfg.Source, events.TypeSessionFailed, events.TypeSessionFailed,
				events.SessionFailed{
					RequestID: requestID,
					SessionID: d.ID,
					Reason:    events.ReasonProvisioningTimeout,
					Detail:    fmt.Sprintf("%s: session %s was still provisioning %s after it was created", detail, d.ID, now.Sub(d.CreatedAt).Round(time.Second)),
				}, requestID); err != nil {
				return err
			}
			if _, err := outbox.Emit(ctx, tx, s.cfg.Source, events.TypeSessionExpired, events.TypeSessionExpired,
				events.SessionExpired{
					SessionID:       d.ID,
					RequestID:       requestID,
					StagingConfigID: d.StagingConfigID.String,
					Reason:          reasonProvisioningTimeout,
				}, requestID); err != nil {
				return err
			}
			s.log.Warn("session stuck in provisioning failed",
				zap.String("session_id", d.ID), zap.String("request_id", requestID),
				zap.String("staging_config_id", d.StagingConfigID.String),
				zap.Duration("age", now.Sub(d.CreatedAt)), zap.Duration("timeout", timeout))
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return changed, full, nil
}
