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
			moved, err := s.failTimedOut(ctx, tx, timedOut{
				SessionID: d.ID, RequestID: d.RequestID.String, StagingConfigID: d.StagingConfigID.String,
				From: sessions.Provisioning, Reason: events.ReasonProvisioningTimeout, Expired: reasonProvisioningTimeout,
				Recorded: detail,
				Detail:   fmt.Sprintf("%s: session %s was still provisioning %s after it was created", detail, d.ID, now.Sub(d.CreatedAt).Round(time.Second)),
			})
			if err != nil {
				return err
			}
			if !moved {
				continue
			}
			requestID := d.RequestID.String
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

// timedOut is a session whose timer fired, and what to say about it.
type timedOut struct {
	SessionID, RequestID, StagingConfigID string
	// From is the status the session is stuck in.
	From sessions.Status
	// Reason is session.failed's reason; Expired is session.expired's.
	Reason, Expired string
	// Recorded goes to failure_reason (after the reason); Detail to the
	// event.
	Recorded, Detail string
}

// failTimedOut moves a session whose timer fired to failed and announces
// it in tx: greenroom.session.failed, the outcome its requester (if any)
// is waiting for, and greenroom.session.expired, on which the provisioner
// removes its container. moved is false when the session left From
// meanwhile: that cannot happen under the row lock the callers hold, but
// if it does its timer no longer applies.
func (s *Sweeper) failTimedOut(ctx context.Context, tx *sqlx.Tx, t timedOut) (moved bool, err error) {
	_, err = sessions.Transition(ctx, tx, t.SessionID, t.From, sessions.Failed,
		sessions.Change{FailureReason: sessions.Ptr(events.RecordedFailure(t.Reason, t.Recorded))})
	if errors.Is(err, sessions.ErrStale) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("error failing session %s: %w", t.SessionID, err)
	}
	if _, err := outbox.Emit(ctx, tx, s.cfg.Source, events.TypeSessionFailed, events.TypeSessionFailed,
		events.SessionFailed{RequestID: t.RequestID, SessionID: t.SessionID, Reason: t.Reason, Detail: t.Detail}, t.RequestID); err != nil {
		return false, err
	}
	if _, err := outbox.Emit(ctx, tx, s.cfg.Source, events.TypeSessionExpired, events.TypeSessionExpired,
		events.SessionExpired{SessionID: t.SessionID, RequestID: t.RequestID, StagingConfigID: t.StagingConfigID, Reason: t.Expired},
		t.RequestID); err != nil {
		return false, err
	}
	return true, nil
}
