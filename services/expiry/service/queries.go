package service

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// dueSession is a session whose timer has fired, locked by this replica's
// transaction until it commits.
type dueSession struct {
	ID              string         `db:"id"`
	RequestID       sql.NullString `db:"request_id"`
	StagingConfigID sql.NullString `db:"staging_config_id"`
	CreatedAt       time.Time      `db:"created_at"`
	DueAt           time.Time      `db:"due_at"`
}

// dueParams select one batch of due sessions.
type dueParams struct {
	// Cutoff: sessions whose timer ran out at or before it are due.
	Cutoff time.Time
	// Limit is the batch size.
	Limit int
}

// Both selects lock what they return and skip what another transaction holds
// (another expiry replica, or the assigner claiming that very session), so
// concurrent sweeps fire each session once and never expire a session out
// from under a claim. `provisioning` is the first status a session has, so
// the time spent in it is the time since created_at (sessions_pending_idx).

const selectStuckProvisioningSQL = `
SELECT id, request_id, staging_config_id, created_at, created_at AS due_at
FROM sessions
WHERE status = 'provisioning' AND created_at < $1
ORDER BY created_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

// A staged session expires at the earlier of its expires_at (stamped when it
// was staged) and staged_at + its staging config's current expiration_hours,
// so that lowering expiration_hours also applies to sessions staged before.
const selectExpiredStagedSQL = `
SELECT s.id, s.request_id, s.staging_config_id, s.created_at,
       LEAST(s.expires_at, s.staged_at + make_interval(secs => sc.expiration_hours * 3600)) AS due_at
FROM sessions s
LEFT JOIN staging_configs sc ON sc.id = s.staging_config_id
WHERE s.status = 'staged'
  AND LEAST(s.expires_at, s.staged_at + make_interval(secs => sc.expiration_hours * 3600)) <= $1
ORDER BY due_at, s.id
LIMIT $2
FOR UPDATE OF s SKIP LOCKED`

func selectStuckProvisioning(ctx context.Context, q sessions.Queryer, p dueParams) ([]dueSession, error) {
	var due []dueSession
	if err := q.SelectContext(ctx, &due, selectStuckProvisioningSQL, p.Cutoff, p.Limit); err != nil {
		return nil, fmt.Errorf("error fetching sessions stuck in provisioning: %w", err)
	}
	return due, nil
}

func selectExpiredStaged(ctx context.Context, q sessions.Queryer, p dueParams) ([]dueSession, error) {
	var due []dueSession
	if err := q.SelectContext(ctx, &due, selectExpiredStagedSQL, p.Cutoff, p.Limit); err != nil {
		return nil, fmt.Errorf("error fetching expired staged sessions: %w", err)
	}
	return due, nil
}
