package sessions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	ServerID        sql.NullString `db:"server_id"`
	StagingConfigID sql.NullString `db:"staging_config_id"`
	UserID          sql.NullString `db:"user_id"`
	ContainerID     string         `db:"container_id"`
	HostPort        sql.NullInt64  `db:"host_port"`
	// URL is where the user opens the session: at the gateway for a
	// container (a fixed server's address for a server session).
	URL string `db:"url"`
	// UpstreamURL is where the gateway reaches a session's container: its
	// agent's internal address and published port.
	UpstreamURL     string          `db:"upstream_url"`
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
	// OnDemandReason says why an on-demand session was not served from a
	// staged pool (OnDemandReason* in libs/events); "" for staged ones.
	OnDemandReason string `db:"on_demand_reason"`
	// Revision is the configuration the container was made with (see
	// schemas/db/00004): a staged session of another revision than its
	// pool's is replaced.
	Revision string `db:"revision"`
	// Limits are the user's effective group's, copied when requested.
	Limits
	// TimeLimitAt and KeepaliveAt are the deadlines Limits give once the
	// session runs; ExpiresAt is then the earlier of them.
	TimeLimitAt   sql.NullTime `db:"time_limit_at"`
	KeepaliveAt   sql.NullTime `db:"keepalive_at"`
	FirstLaunchAt sql.NullTime `db:"first_launch_at"`
	// AssignSecret is the staged container's own secret, the bearer token
	// of its assign hook; "" until the provisioner makes the container.
	AssignSecret Secret `db:"assign_secret"`
	// Requester is the requesting service the session's request came
	// from (events.RequesterOf), "" for the unqualified subject.
	Requester string `db:"requester"`
}

// Secret is a value that must never reach a log, an event or the API: it
// prints and marshals as "[redacted]". Reveal returns it.
type Secret string

// Reveal is the secret itself, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string   { return "[redacted]" }
func (s Secret) GoString() string { return "[redacted]" }

// MarshalJSON keeps the secret out of any JSON a Session is written in.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Limits are how long a running session may last: TimeLimit from when it
// starts running, KeepaliveExpiration from its last keepalive (or its
// start). Zero means no limit.
// The columns are intervals, read as nanoseconds (see columns).
type Limits struct {
	TimeLimit           time.Duration `db:"session_time_limit_ns"`
	KeepaliveExpiration time.Duration `db:"keepalive_expiration_ns"`
}

// intervalNanos reads interval column col of table alias t (or none) as
// nanoseconds, 0 when NULL.
func intervalNanos(t, col string) string {
	return fmt.Sprintf("COALESCE((EXTRACT(EPOCH FROM %s%s) * 1000000000)::bigint, 0) AS %s_ns", t, col, col)
}

// IntervalArg is d as an SQL interval parameter (cast with ::interval);
// NULL for 0, no limit.
func IntervalArg(d time.Duration) any {
	if d <= 0 {
		return nil
	}
	return fmt.Sprintf("%d microseconds", d.Microseconds())
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

// columnsOf lists the columns of Session, of table alias t ("s.") or none.
func columnsOf(t string) string {
	cols := []string{"id", "request_id", "workspace_id", "zone_id", "agent_id", "server_id", "staging_config_id", "user_id",
		"container_id", "host_port", "url", "upstream_url", "origin", "status", "permissions", "cores", "memory_mb", "failure_reason",
		"created_at", "updated_at", "staged_at", "assigned_at", "running_at", "expires_at", "destroyed_at",
		"on_demand_reason", "revision", "time_limit_at", "keepalive_at", "first_launch_at", "assign_secret", "requester"}
	for i, c := range cols {
		cols[i] = t + c
	}
	return strings.Join(append(cols, intervalNanos(t, "session_time_limit"), intervalNanos(t, "keepalive_expiration")), ", ")
}

// Columns is the select list of a Session.
var columns = columnsOf("")

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
	// OnDemandReason says why an on-demand session is not staged.
	OnDemandReason string
	// Revision is the configuration its container is made with.
	Revision string
	Limits   Limits
	// Requester is the requesting service whose subject the request came
	// on (events.RequesterOf); its outcome goes to that service only.
	Requester string
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
		(id, request_id, workspace_id, zone_id, agent_id, staging_config_id, user_id, origin, status, permissions, cores, memory_mb,
		 on_demand_reason, revision, session_time_limit, keepalive_expiration, requester)
		VALUES ($1, NULLIF($2, ''), $3, $4, NULLIF($5, '')::uuid, NULLIF($6, '')::uuid, NULLIF($7, '')::uuid, $8, 'provisioning', $9, $10, $11,
		 $12, $13, $14::interval, $15::interval, $16)
		RETURNING `+columns,
		n.ID, n.RequestID, n.WorkspaceID, n.ZoneID, n.AgentID, n.StagingConfigID, n.UserID, n.Origin, string(perms), n.Cores, n.MemoryMB,
		n.OnDemandReason, n.Revision, IntervalArg(n.Limits.TimeLimit), IntervalArg(n.Limits.KeepaliveExpiration), n.Requester)
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
// handed to a user they do not fit. Nor is a session on an agent the
// autoscaler is draining: a user there would keep the agent (and its
// machine) until their session ends; the pool replaces it on another agent.
// The inner SELECT reads the partial index sessions_staged_claim_idx (and
// an agent's row by its key); SKIP LOCKED lets concurrent claims (any
// replica) take different rows instead of queueing on the same one.
var ClaimStagedSQL = `UPDATE sessions s
	SET status = 'assigning', user_id = $2, request_id = $3, assigned_at = now(), expires_at = NULL, updated_at = now(),
		session_time_limit = $5::interval, keepalive_expiration = $6::interval, requester = $7
	FROM (
		SELECT id FROM sessions
		WHERE staging_config_id = $1 AND status = 'staged' AND permissions = $4::jsonb
			AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = sessions.agent_id AND a.lifecycle <> 'active')
		ORDER BY staged_at
		LIMIT 1
		FOR UPDATE SKIP LOCKED
	) c
	WHERE s.id = c.id
	RETURNING ` + columnsOf("s.")

// ClaimStaged moves the oldest staged session of stagingConfigID started
// with exactly perms to assigning for userID under requestID, with no
// limits. ErrNoneStaged when there is none.
func ClaimStaged(ctx context.Context, q Queryer, stagingConfigID, userID, requestID string, perms events.Permissions) (Session, error) {
	return ClaimStagedFor(ctx, q, Claim{StagingConfigID: stagingConfigID, UserID: userID, RequestID: requestID, Permissions: perms})
}

// Claim is a user's claim of a staged session.
type Claim struct {
	StagingConfigID string
	UserID          string
	RequestID       string
	// Permissions are the user's; only a session started with exactly
	// these is taken.
	Permissions events.Permissions
	// Limits are the user's, from their effective group.
	Limits Limits
	// Requester is as in New.
	Requester string
}

// ClaimStagedFor is ClaimStaged with the user's limits. ErrNoneStaged
// when there is none.
func ClaimStagedFor(ctx context.Context, q Queryer, c Claim) (Session, error) {
	raw, err := json.Marshal(c.Permissions)
	if err != nil {
		return Session{}, err
	}
	var s Session
	err = q.GetContext(ctx, &s, ClaimStagedSQL, c.StagingConfigID, c.UserID, c.RequestID, string(raw),
		IntervalArg(c.Limits.TimeLimit), IntervalArg(c.Limits.KeepaliveExpiration), c.Requester)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNoneStaged
	}
	if err != nil {
		return Session{}, fmt.Errorf("claiming staged session of %s: %w", c.StagingConfigID, err)
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
	UpstreamURL   *string
	FailureReason *string
	ExpiresAt     *time.Time
	FirstLaunchAt *time.Time
	AssignSecret  *Secret
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
		{"upstream_url", ch.UpstreamURL != nil, func() any { return *ch.UpstreamURL }},
		{"failure_reason", ch.FailureReason != nil, func() any { return *ch.FailureReason }},
		{"expires_at", ch.ExpiresAt != nil, func() any { return *ch.ExpiresAt }},
		{"first_launch_at", ch.FirstLaunchAt != nil, func() any { return *ch.FirstLaunchAt }},
		{"assign_secret", ch.AssignSecret != nil, func() any { return ch.AssignSecret.Reveal() }},
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
	if to == Running {
		// The session's clocks start: its limits become deadlines.
		set += `, time_limit_at = now() + session_time_limit, keepalive_at = now() + keepalive_expiration,
			expires_at = LEAST(now() + session_time_limit, now() + keepalive_expiration)`
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

// Keepalive extends a running session's keepalive deadline to at least
// `at` plus its keepalive expiration, and its expires_at with it (never
// past its time limit). It never shortens a deadline, so replaying an old
// keepalive changes nothing. A session without a keepalive expiration is
// returned unchanged; ErrStale when it is not running, ErrNotFound when
// there is no such session.
func Keepalive(ctx context.Context, q Queryer, id string, at time.Time) (Session, error) {
	var s Session
	err := q.GetContext(ctx, &s, `UPDATE sessions SET
			keepalive_at = GREATEST(keepalive_at, $2::timestamptz + keepalive_expiration),
			expires_at = LEAST(time_limit_at, GREATEST(keepalive_at, $2::timestamptz + keepalive_expiration)),
			updated_at = now()
		WHERE id = $1 AND status = 'running'
		RETURNING `+columns, id, at)
	if errors.Is(err, sql.ErrNoRows) {
		cur, gerr := Get(ctx, q, id)
		if gerr != nil {
			return Session{}, gerr
		}
		return cur, fmt.Errorf("%w: %s is %s, not running", ErrStale, id, cur.Status)
	}
	if err != nil {
		return Session{}, fmt.Errorf("keeping session %s alive: %w", id, err)
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
