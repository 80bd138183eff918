package service

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// expireStagedSessions expires one batch of staged sessions whose expiration
// has passed at now (rule 2: "a staged session unassigned for
// expiration_hours is destroyed and re-created"). Each moves staged →
// destroying and greenroom.session.expired (reason staged_expired) is
// emitted in the same transaction; the provisioner destroys the container
// and provisions the replacement; should it never do so, the destroy is
// sent again after DestroyTimeout (retryStuckDestroying). A staged session
// is never assigned, so no requester is waiting on it and no session.failed
// is sent.
//
// full reports whether the batch was full, i.e. more may be due.
func (s *Sweeper) expireStagedSessions(ctx context.Context, now time.Time) (changed int, full bool, err error) {
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		due, err := selectExpiredStaged(ctx, tx, dueParams{Cutoff: now, Limit: s.cfg.BatchSize})
		if err != nil {
			return err
		}
		full = len(due) == s.cfg.BatchSize
		for _, d := range due {
			ok, err := s.announceExpired(ctx, tx, d, sessions.Staged, reasonStagedExpired, now)
			if err != nil {
				return fmt.Errorf("error expiring staged session %s: %w", d.ID, err)
			}
			if !ok {
				continue // claimed or destroyed meanwhile; see failStuckProvisioning
			}
			s.log.Info("staged session expired",
				zap.String("session_id", d.ID), zap.String("staging_config_id", d.StagingConfigID.String),
				zap.Time("expired_at", d.DueAt))
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return changed, full, nil
}
