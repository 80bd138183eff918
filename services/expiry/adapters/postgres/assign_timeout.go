package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// FailStuckAssigning fails one batch of sessions claimed for a user before
// p.Cutoff, more than p.Timeout (the sweeper's AssignTimeout) ago, and
// still in `assigning`: the provisioner never reported the outcome of
// their assign command (its session.assigned was dead-lettered, say, or
// the provisioner is down).
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
func (s *SessionTimers) FailStuckAssigning(ctx context.Context, p app.TimerParams) (changed int, full bool, err error) {
	return s.fireBatch(ctx, p, selectStuckAssigning, func(ctx context.Context, tx *sqlx.Tx, d dueSession) (bool, error) {
		detail := fmt.Sprintf("no outcome within %s", p.Timeout)
		return s.failTimedOut(ctx, tx, p, timedOut{
			SessionID: d.ID, RequestID: d.RequestID.String, StagingConfigID: d.StagingConfigID.String, Requester: d.Requester,
			From: sessions.Assigning, Since: d.Since,
			Reason: events.ReasonAssignFailed, Expired: domain.ReasonAssignTimeout,
			Recorded: detail,
			Detail: fmt.Sprintf("%s: session %s was still assigning %s after it was claimed; its assign command never reported back",
				detail, d.ID, p.Now.Sub(d.Since).Round(time.Second)),
		})
	})
}
