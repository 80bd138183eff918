package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// ExpireStagedSessions expires one batch of staged sessions whose
// expiration ran out at or before p.Cutoff, the pass's time (rule 2: "a
// staged session unassigned for expiration_hours is destroyed and
// re-created"). Each moves staged →
// destroying and greenroom.session.expired (reason staged_expired) is
// emitted in the same transaction; the provisioner destroys the container
// and provisions the replacement; should it never do so, the destroy is
// sent again after DestroyTimeout (RetryStuckDestroying). A staged session
// is never assigned, so no requester is waiting on it and no session.failed
// is sent.
//
// full reports whether the batch was full, i.e. more may be due.
func (s *SessionTimers) ExpireStagedSessions(ctx context.Context, p app.TimerParams) (changed int, full bool, err error) {
	return s.fireBatch(ctx, p, selectExpiredStaged, func(ctx context.Context, tx *sqlx.Tx, d dueSession) (bool, error) {
		ok, err := announceExpired(ctx, tx, d, sessions.Staged, domain.ReasonStagedExpired, p)
		if err != nil {
			return false, fmt.Errorf("error expiring staged session %s: %w", d.ID, err)
		}
		if !ok {
			return false, nil // claimed or destroyed meanwhile; see failTimedOut
		}
		s.log.Info("staged session expired",
			zap.String("session_id", d.ID), zap.String("staging_config_id", d.StagingConfigID.String),
			zap.Time("expired_at", d.DueAt))
		return true, nil
	})
}
