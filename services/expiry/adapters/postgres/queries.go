package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
)

// dueSession is a session whose timer has fired, locked by this replica's
// transaction until it commits.
type dueSession struct {
	ID              string         `db:"id"`
	RequestID       sql.NullString `db:"request_id"`
	StagingConfigID sql.NullString `db:"staging_config_id"`
	// Requester is whose subject its outcome goes to (events.SubjectFor).
	Requester string    `db:"requester"`
	CreatedAt time.Time `db:"created_at"`
	// DueAt is when a staged session's expiration ran out.
	DueAt time.Time `db:"due_at"`
	// Since is when a session stuck in assigning or destroying entered
	// that status (or, for destroying, was last asked to destroy again),
	// or when a running session started running.
	Since time.Time `db:"since"`
}

// Every select locks what it returns and skips what another transaction
// holds (another expiry replica, the assigner claiming that very session,
// the provisioner destroying it), so concurrent sweeps fire each session
// once and never expire a session out from under a claim. All of them read
// sessions_pending_idx. `provisioning` is the first status a session has,
// so the time spent in it is the time since created_at; the claim stamps
// assigned_at; updated_at of a destroying session is when it entered
// destroying or, after a retry, when that retry was sent
// (touchDestroyingSQL).

const selectStuckProvisioningSQL = `
SELECT id, request_id, staging_config_id, requester, created_at, created_at AS due_at
FROM sessions
WHERE status = 'provisioning' AND created_at < $1
ORDER BY created_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

// A staged session expires at the earlier of its expires_at (stamped when it
// was staged) and staged_at + its staging config's current expiration_hours,
// so that lowering expiration_hours also applies to sessions staged before.
const selectExpiredStagedSQL = `
SELECT s.id, s.request_id, s.staging_config_id, s.requester, s.created_at,
       LEAST(s.expires_at, s.staged_at + make_interval(secs => sc.expiration_hours * 3600)) AS due_at
FROM sessions s
LEFT JOIN staging_configs sc ON sc.id = s.staging_config_id
WHERE s.status = 'staged'
  AND LEAST(s.expires_at, s.staged_at + make_interval(secs => sc.expiration_hours * 3600)) <= $1
ORDER BY due_at, s.id
LIMIT $2
FOR UPDATE OF s SKIP LOCKED`

const selectStuckAssigningSQL = `
SELECT id, request_id, staging_config_id, requester, created_at, assigned_at AS since
FROM sessions
WHERE status = 'assigning' AND assigned_at < $1
ORDER BY assigned_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

const selectStuckDestroyingSQL = `
SELECT id, request_id, staging_config_id, requester, created_at, updated_at AS since
FROM sessions
WHERE status = 'destroying' AND updated_at < $1
ORDER BY updated_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

// A running session ends at its expires_at, the earlier of its
// time_limit_at and keepalive_at (libs/sessions stamps all three). The two
// timers split the due ones by which deadline passed: the time limit's
// takes those whose time limit is reached and runs first, so a session past
// both deadlines ends with reason time_limit; the keepalive's takes the
// rest. Both read the partial index sessions_running_expiry_idx.

const selectRunningPastTimeLimitSQL = `
SELECT id, request_id, staging_config_id, requester, created_at, expires_at AS due_at, COALESCE(running_at, created_at) AS since
FROM sessions
WHERE status = 'running' AND expires_at <= $1 AND time_limit_at <= $1
ORDER BY expires_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

const selectRunningPastKeepaliveSQL = `
SELECT id, request_id, staging_config_id, requester, created_at, expires_at AS due_at, COALESCE(running_at, created_at) AS since
FROM sessions
WHERE status = 'running' AND expires_at <= $1 AND (time_limit_at IS NULL OR time_limit_at > $1)
ORDER BY expires_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

// touchDestroyingSQL restarts the destroying timer of a session whose
// destroy was just sent again. It writes the sweeper's clock, not now(),
// because the timer is read against that clock (app.SweeperConfig.Now); the
// status guard keeps it from touching a session that moved on. It is the
// only column of sessions the expiry service writes outside libs/sessions,
// and it is not a status.
const touchDestroyingSQL = `
UPDATE sessions SET updated_at = $2 WHERE id = $1 AND status = 'destroying'`

// selectDue runs one of the timers' selections: sessions due at p.Cutoff,
// at most p.Limit, locked with SKIP LOCKED.
func selectDue(ctx context.Context, q sessions.Queryer, query, what string, p app.TimerParams) ([]dueSession, error) {
	var due []dueSession
	if err := q.SelectContext(ctx, &due, query, p.Cutoff, p.Limit); err != nil {
		return nil, fmt.Errorf("error fetching %s: %w", what, err)
	}
	return due, nil
}

func selectStuckProvisioning(ctx context.Context, q sessions.Queryer, p app.TimerParams) ([]dueSession, error) {
	return selectDue(ctx, q, selectStuckProvisioningSQL, "sessions stuck in provisioning", p)
}

func selectExpiredStaged(ctx context.Context, q sessions.Queryer, p app.TimerParams) ([]dueSession, error) {
	return selectDue(ctx, q, selectExpiredStagedSQL, "expired staged sessions", p)
}

func selectStuckAssigning(ctx context.Context, q sessions.Queryer, p app.TimerParams) ([]dueSession, error) {
	return selectDue(ctx, q, selectStuckAssigningSQL, "sessions stuck in assigning", p)
}

func selectStuckDestroying(ctx context.Context, q sessions.Queryer, p app.TimerParams) ([]dueSession, error) {
	return selectDue(ctx, q, selectStuckDestroyingSQL, "sessions stuck in destroying", p)
}

func selectRunningPastTimeLimit(ctx context.Context, q sessions.Queryer, p app.TimerParams) ([]dueSession, error) {
	return selectDue(ctx, q, selectRunningPastTimeLimitSQL, "running sessions past their time limit", p)
}

func selectRunningPastKeepalive(ctx context.Context, q sessions.Queryer, p app.TimerParams) ([]dueSession, error) {
	return selectDue(ctx, q, selectRunningPastKeepaliveSQL, "running sessions past their keepalive", p)
}

// touchDestroying restarts session id's destroying timer at `at`; false
// when it is no longer destroying.
func touchDestroying(ctx context.Context, q sessions.Queryer, id string, at time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, touchDestroyingSQL, id, at)
	if err != nil {
		return false, fmt.Errorf("error restarting the destroy timer of session %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("error restarting the destroy timer of session %s: %w", id, err)
	}
	return n == 1, nil
}
