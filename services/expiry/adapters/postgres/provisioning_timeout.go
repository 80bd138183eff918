package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// FailStuckProvisioning fails one batch of sessions that have been in
// `provisioning` since before p.Cutoff, longer than p.Timeout (the
// sweeper's ProvisioningTimeout). For each it announces, in the same
// transaction:
//   - greenroom.session.failed (reason provisioning_timeout), the outcome a
//     waiting requester receives — on-demand sessions carry the request_id;
//   - greenroom.session.expired (reason provisioning_timeout), on which the
//     provisioner removes whatever container it may have made meanwhile.
//
// full reports whether the batch was full, i.e. more may be due.
func (s *SessionTimers) FailStuckProvisioning(ctx context.Context, p app.TimerParams) (changed int, full bool, err error) {
	return s.fireBatch(ctx, p, selectStuckProvisioning, func(ctx context.Context, tx *sqlx.Tx, d dueSession) (bool, error) {
		detail := fmt.Sprintf("provisioning timed out after %s", p.Timeout)
		return s.failTimedOut(ctx, tx, p, timedOut{
			SessionID: d.ID, RequestID: d.RequestID.String, StagingConfigID: d.StagingConfigID.String, Requester: d.Requester,
			From: sessions.Provisioning, Since: d.CreatedAt,
			Reason: events.ReasonProvisioningTimeout, Expired: domain.ReasonProvisioningTimeout,
			Recorded: detail,
			Detail:   fmt.Sprintf("%s: session %s was still provisioning %s after it was created", detail, d.ID, p.Now.Sub(d.CreatedAt).Round(time.Second)),
		})
	})
}

// timedOut is a session whose timer fired, and what to say about it.
type timedOut struct {
	SessionID, RequestID, StagingConfigID string
	// Requester is whose subject session.failed goes to.
	Requester string
	// From is the status the session is stuck in, since Since.
	From  sessions.Status
	Since time.Time
	// Reason is session.failed's reason; Expired is session.expired's.
	Reason, Expired string
	// Recorded goes to failure_reason (after the reason); Detail to the
	// event.
	Recorded, Detail string
}

// failTimedOut moves a session whose timer fired to failed and announces
// it in tx, as p.Source: greenroom.session.failed, the outcome its
// requester (if any) is waiting for, and greenroom.session.expired, on
// which the provisioner removes its container; then it logs the failure.
// moved is false when the session left From meanwhile: that cannot
// happen under the row lock the callers hold, but if it does its timer
// no longer applies.
func (s *SessionTimers) failTimedOut(ctx context.Context, tx *sqlx.Tx, p app.TimerParams, t timedOut) (moved bool, err error) {
	_, err = sessions.Transition(ctx, tx, t.SessionID, t.From, sessions.Failed,
		sessions.Change{FailureReason: sessions.Ptr(events.RecordedFailure(t.Reason, t.Recorded))})
	if errors.Is(err, sessions.ErrStale) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("error failing session %s: %w", t.SessionID, err)
	}
	if _, err := outbox.Emit(ctx, tx, p.Source, events.SubjectFor(events.TypeSessionFailed, t.Requester), events.TypeSessionFailed,
		events.SessionFailed{RequestID: t.RequestID, SessionID: t.SessionID, Reason: t.Reason, Detail: t.Detail}, t.RequestID); err != nil {
		return false, err
	}
	if _, err := outbox.Emit(ctx, tx, p.Source, events.TypeSessionExpired, events.TypeSessionExpired,
		events.SessionExpired{SessionID: t.SessionID, RequestID: t.RequestID, StagingConfigID: t.StagingConfigID, Reason: t.Expired},
		t.RequestID); err != nil {
		return false, err
	}
	s.log.Warn("session stuck in "+string(t.From)+" failed",
		zap.String("session_id", t.SessionID), zap.String("request_id", t.RequestID),
		zap.String("staging_config_id", t.StagingConfigID),
		zap.Duration("age", p.Now.Sub(t.Since)), zap.Duration("timeout", p.Timeout))
	return true, nil
}
