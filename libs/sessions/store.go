package sessions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Session is a row of the sessions table.
type Session struct {
	ID          string         `db:"id"`
	RequestID   sql.NullString `db:"request_id"`
	WorkspaceID string         `db:"workspace_id"`
	ZoneID      string         `db:"zone_id"`
	AgentID     sql.NullString `db:"agent_id"`
	// ServerID is set instead of AgentID for a session on a fixed server
	// (a workspace with a server pool): no container, only an assignment.
	ServerID        sql.NullString  `db:"server_id"`
	StagingConfigID sql.NullString  `db:"staging_config_id"`
	UserID          sql.NullString  `db:"user_id"`
	ContainerID     string          `db:"container_id"`
	HostPort        sql.NullInt64   `db:"host_port"`
	URL             string          `db:"url"`
	Origin          string          `db:"origin"`
	Status          Status          `db:"status"`
	PermissionsJSON json.RawMessage `db:"permissions"`
	Cores           float64         `db:"cores"`
	MemoryMB        int             `db:"memory_mb"`
	FailureReason   string          `db:"failure_reason"`
	CreatedAt       time.Time       `db:"created_at"`
	UpdatedAt       time.Time       `db:"updated_at"`
	StagedAt        sql.NullTime    `db:"staged_at"`
	AssignedAt      sql.NullTime    `db:"assigned_at"`
	RunningAt       sql.NullTime    `db:"running_at"`
	ExpiresAt       sql.NullTime    `db:"expires_at"`
	DestroyedAt     sql.NullTime    `db:"destroyed_at"`
}

// Permissions decodes the permissions the session's container started with.
func (s Session) Permissions() (events.Permissions, error) {
	var p events.Permissions
	if len(s.PermissionsJSON) == 0 {
		return p, nil
	}
	err := json.Unmarshal(s.PermissionsJSON, &p)
	return p, err
}

// Queryer is what the store needs: a *sqlx.DB or a *sqlx.Tx.
type Queryer interface {
	sqlx.QueryerContext
	sqlx.ExecerContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

const columns = `id, request_id, workspace_id, zone_id, agent_id, server_id, staging_config_id, user_id,
	container_id, host_port, url, origin, status, permissions, cores, memory_mb, failure_reason,
	created_at, updated_at, staged_at, assigned_at, running_at, expires_at, destroyed_at`

// New describes a session to insert in status provisioning.
type New struct {
	ID              string
	RequestID       string // empty for staged sessions
	WorkspaceID     string
	ZoneID          string
	AgentID         string // empty until placed
	StagingConfigID string // empty for on-demand sessions
	UserID          string // empty for staged sessions
	Origin          string
	Permissions     events.Permissions
	Cores           float64
	MemoryMB        int
}

// Insert creates a session in status provisioning. A duplicate request_id
// fails with a unique violation on sessions_request_id_key.
func Insert(ctx context.Context, q Queryer, n New) (Session, error) {
	perms, err := json.Marshal(n.Permissions)
	if err != nil {
		return Session{}, err
	}
	var s Session
	err = q.GetContext(ctx, &s, `INSERT INTO sessions
		(id, request_id, workspace_id, zone_id, agent_id, staging_config_id, user_id, origin, status, permissions, cores, memory_mb)
		VALUES ($1, NULLIF($2, ''), $3, $4, NULLIF($5, '')::uuid, NULLIF($6, '')::uuid, NULLIF($7, '')::uuid, $8, 'provisioning', $9, $10, $11)
		RETURNING `+columns,
		n.ID, n.RequestID, n.WorkspaceID, n.ZoneID, n.AgentID, n.StagingConfigID, n.UserID, n.Origin, string(perms), n.Cores, n.MemoryMB)
	if err != nil {
		return Session{}, fmt.Errorf("inserting session: %w", err)
	}
	return s, nil
}

// Get loads a session by id.
func Get(ctx context.Context, q Queryer, id string) (Session, error) {
	var s Session
	err := q.GetContext(ctx, &s, `SELECT `+columns+` FROM sessions WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Session{}, fmt.Errorf("loading session %s: %w", id, err)
	}
	return s, nil
}

// GetByRequestID loads the session created for a request.
func GetByRequestID(ctx context.Context, q Queryer, requestID string) (Session, error) {
	var s Session
	err := q.GetContext(ctx, &s, `SELECT `+columns+` FROM sessions WHERE request_id = $1`, requestID)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("%w: request %s", ErrNotFound, requestID)
	}
	if err != nil {
		return Session{}, fmt.Errorf("loading session of request %s: %w", requestID, err)
	}
	return s, nil
}

// ClaimStagedSQL takes the oldest staged session of a staging config for a
// user in one statement. It matches the permissions each container was
// started with, not the config's current ones: after an administrator
// changes a config, containers started under the old permissions are never
// handed to a user they do not fit. The inner SELECT reads only the partial index
// sessions_staged_claim_idx; SKIP LOCKED lets concurrent claims (any
// replica) take different rows instead of queueing on the same one.
const ClaimStagedSQL = `UPDATE sessions s
	SET status = 'assigning', user_id = $2, request_id = $3, assigned_at = now(), expires_at = NULL, updated_at = now()
	FROM (
		SELECT id FROM sessions
		WHERE staging_config_id = $1 AND status = 'staged' AND permissions = $4::jsonb
		ORDER BY staged_at
		LIMIT 1
		FOR UPDATE SKIP LOCKED
	) c
	WHERE s.id = c.id
	RETURNING ` + "s.id, s.request_id, s.workspace_id, s.zone_id, s.agent_id, s.staging_config_id, s.user_id," +
	"s.container_id, s.host_port, s.url, s.origin, s.status, s.permissions, s.cores, s.memory_mb, s.failure_reason," +
	"s.created_at, s.updated_at, s.staged_at, s.assigned_at, s.running_at, s.expires_at, s.destroyed_at"

// ClaimStaged moves the oldest staged session of stagingConfigID started
// with exactly perms to assigning for userID under requestID. ErrNoneStaged
// when there is none.
func ClaimStaged(ctx context.Context, q Queryer, stagingConfigID, userID, requestID string, perms events.Permissions) (Session, error) {
	raw, err := json.Marshal(perms)
	if err != nil {
		return Session{}, err
	}
	var s Session
	err = q.GetContext(ctx, &s, ClaimStagedSQL, stagingConfigID, userID, requestID, string(raw))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoneStaged
	}
	if err != nil {
		return Session{}, fmt.Errorf("claiming staged session of %s: %w", stagingConfigID, err)
	}
	return s, nil
}

// Change lists the columns a transition sets besides status and its time.
type Change struct {
	AgentID       *string
	ServerID      *string
	ZoneID        *string
	ContainerID   *string
	HostPort      *int
	URL           *string
	FailureReason *string
	ExpiresAt     *time.Time
}

// apply calls set for each column the change assigns.
func (ch Change) apply(set func(col string, v any)) {
	for _, c := range []struct {
		col string
		ok  bool
		v   func() any
	}{
		{"agent_id", ch.AgentID != nil, func() any { return *ch.AgentID }},
		{"server_id", ch.ServerID != nil, func() any { return *ch.ServerID }},
		{"zone_id", ch.ZoneID != nil, func() any { return *ch.ZoneID }},
		{"container_id", ch.ContainerID != nil, func() any { return *ch.ContainerID }},
		{"host_port", ch.HostPort != nil, func() any { return *ch.HostPort }},
		{"url", ch.URL != nil, func() any { return *ch.URL }},
		{"failure_reason", ch.FailureReason != nil, func() any { return *ch.FailureReason }},
		{"expires_at", ch.ExpiresAt != nil, func() any { return *ch.ExpiresAt }},
	} {
		if c.ok {
			set(c.col, c.v())
		}
	}
}

// timeColumn is the timestamp each status stamps when entered.
var timeColumn = map[Status]string{
	Staged:    "staged_at",
	Assigning: "assigned_at",
	Running:   "running_at",
	Destroyed: "destroyed_at",
	Failed:    "destroyed_at",
}

// Transition moves session id from `from` to `to`, applying ch, in one
// conditional UPDATE. It returns ErrIllegalTransition when the lifecycle
// forbids it and ErrStale when the row is no longer in `from`.
func Transition(ctx context.Context, q Queryer, id string, from, to Status, ch Change) (Session, error) {
	if err := checkTransition(from, to); err != nil {
		return Session{}, err
	}
	set := "status = $3, updated_at = now()"
	args := []any{id, from, to}
	add := func(col string, v any) {
		args = append(args, v)
		set += fmt.Sprintf(", %s = $%d", col, len(args))
	}
	if col, ok := timeColumn[to]; ok {
		set += ", " + col + " = COALESCE(" + col + ", now())"
	}
	ch.apply(add)
	var s Session
	err := q.GetContext(ctx, &s, `UPDATE sessions SET `+set+` WHERE id = $1 AND status = $2 RETURNING `+columns, args...)
	if errors.Is(err, sql.ErrNoRows) {
		cur, gerr := Get(ctx, q, id)
		if gerr != nil {
			return Session{}, gerr
		}
		return cur, fmt.Errorf("%w: %s is %s, not %s", ErrStale, id, cur.Status, from)
	}
	if err != nil {
		return Session{}, fmt.Errorf("moving session %s %s → %s: %w", id, from, to, err)
	}
	return s, nil
}

// Update sets non-status columns of a session in its current status, e.g.
// the container id once created while still provisioning.
func Update(ctx context.Context, q Queryer, id string, in Status, ch Change) (Session, error) {
	set := "updated_at = now()"
	args := []any{id, in}
	add := func(col string, v any) {
		args = append(args, v)
		set += fmt.Sprintf(", %s = $%d", col, len(args))
	}
	ch.apply(add)
	var s Session
	err := q.GetContext(ctx, &s, `UPDATE sessions SET `+set+` WHERE id = $1 AND status = $2 RETURNING `+columns, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("%w: %s is not %s", ErrStale, id, in)
	}
	if err != nil {
		return Session{}, fmt.Errorf("updating session %s: %w", id, err)
	}
	return s, nil
}

// Ptr returns a pointer to v, for building a Change.
func Ptr[T any](v T) *T { return &v }
