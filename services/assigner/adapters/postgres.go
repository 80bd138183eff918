// Package adapters performs the assigner's plan in PostgreSQL: it loads what
// the rules need, claims staged sessions (libs/sessions.ClaimStagedFor, one
// statement), creates on-demand session rows, records violations, and
// writes every event into the outbox in the same transaction.
package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/assigner/app"
	"github.com/greenroom-dev/greenroom/services/assigner/domain"
)

// Store is the assigner's database: it implements app.Store, and its Tx
// app.ClaimTx.
type Store struct {
	db     *sqlx.DB
	source string
	// direct publishes a request's events right after their commit; nil
	// leaves them to the outbox relays.
	direct *outbox.Direct
}

// NewStore returns a Store; source is the CloudEvents source of events it
// writes. direct, when not nil, publishes the events of each request
// itself right after their commit (outbox.Direct): the relay would be one
// hop more between the claim and the provisioner's hand-off.
func NewStore(conn *sqlx.DB, source string, direct *outbox.Direct) *Store {
	return &Store{db: conn, source: source, direct: direct}
}

// InTx runs fn in one transaction: whatever fn claims, creates and emits
// commits together or not at all. fn's events go out with the ctx it is
// given. A session already made for the same request_id by a concurrent
// transaction fails it with app.ErrRequestAlreadyServed.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx app.ClaimTx) error) error {
	err := s.direct.InTx(ctx, s.db, func(ctx context.Context, tx *sqlx.Tx) error {
		return fn(ctx, &Tx{tx: tx, source: s.source})
	})
	if db.IsUniqueViolation(err, "sessions_request_id_key") {
		return fmt.Errorf("%w: %w", app.ErrRequestAlreadyServed, err)
	}
	return err
}

var (
	_ app.Store   = (*Store)(nil)
	_ app.ClaimTx = (*Tx)(nil)
)

// Tx is one request's unit of work.
type Tx struct {
	tx     *sqlx.Tx
	source string
}

// Session loads the session already made for a request (see
// app.RequestContext.ExistingSessionID).
func (t *Tx) Session(ctx context.Context, requestID string) (sessions.Session, error) {
	return sessions.GetByRequestID(ctx, t.tx, requestID)
}

// loadSQL reads everything one request needs in one round trip: the
// session already made for its request_id (if any), the user, the
// workspace, every zone, the user's groups (with the name of their web
// filter policy, and their limits as nanoseconds, null for none) and the
// workspace's staging configs. $1 user, $2 workspace, $3 request_id.
const loadSQL = `WITH u AS (SELECT id FROM users WHERE username = $1),
	w AS (SELECT id, name, enabled, persistent_profile_path, volume_mappings, cores, memory_mb,
			server_pool_id IS NOT NULL AS on_servers
		FROM workspaces WHERE name = $2)
SELECT
	(SELECT id::text FROM sessions WHERE request_id = $3) AS existing_session_id,
	(SELECT id::text FROM u) AS user_id,
	(SELECT row_to_json(w) FROM w) AS workspace,
	(SELECT COALESCE(json_agg(json_build_object('id', id, 'name', name,
			'search_alternate_zones', search_alternate_zones, 'priority', priority)), '[]')
		FROM zones) AS zones,
	(SELECT COALESCE(json_agg(json_build_object('name', g.name, 'priority', g.priority,
			'allow_audio', g.allow_audio, 'allow_clipboard_down', g.allow_clipboard_down,
			'allow_clipboard_up', g.allow_clipboard_up, 'allow_downloads', g.allow_downloads,
			'allow_microphone', g.allow_microphone, 'allow_uploads', g.allow_uploads,
			'allow_gamepad', g.allow_gamepad, 'expose_user_environment_vars', g.expose_user_environment_vars,
			'inject_ssh_keys', g.inject_ssh_keys, 'run_config', g.run_config,
			'volume_mapping', g.volume_mapping, 'web_filter_policy', COALESCE(p.name, ''),
			'session_time_limit_ns', (EXTRACT(EPOCH FROM g.session_time_limit) * 1e9)::bigint,
			'keepalive_expiration_ns', (EXTRACT(EPOCH FROM g.keepalive_expiration) * 1e9)::bigint)), '[]')
		FROM groups g JOIN user_groups ug ON ug.group_id = g.id
		LEFT JOIN web_filter_policies p ON p.id = g.web_filter_policy_id
		WHERE ug.user_id = (SELECT id FROM u)) AS groups,
	(SELECT COALESCE(json_agg(json_build_object('id', c.id, 'zone_id', c.zone_id,
			'workspace_id', c.workspace_id, 'allow_audio', c.allow_audio,
			'allow_clipboard_down', c.allow_clipboard_down, 'allow_clipboard_up', c.allow_clipboard_up,
			'allow_downloads', c.allow_downloads, 'allow_microphone', c.allow_microphone,
			'allow_uploads', c.allow_uploads, 'allow_gamepad', c.allow_gamepad)), '[]')
		FROM staging_configs c WHERE c.workspace_id = (SELECT id FROM w) AND c.deleted_at IS NULL) AS configs`

// Load reads the user, workspace, zones, groups and staging configs of req
// in one query. When req's request_id already has a session,
// ExistingSessionID is set, whatever else the error says: a repeated
// request is answered from its session even if its user has gone since.
func (t *Tx) Load(ctx context.Context, req events.SessionRequested) (app.RequestContext, error) {
	var row struct {
		Existing  sql.NullString `db:"existing_session_id"`
		UserID    sql.NullString `db:"user_id"`
		Workspace []byte         `db:"workspace"`
		Zones     []byte         `db:"zones"`
		Groups    []byte         `db:"groups"`
		Configs   []byte         `db:"configs"`
	}
	var rc app.RequestContext
	if err := t.tx.GetContext(ctx, &row, loadSQL, req.User, req.Workspace, req.RequestID); err != nil {
		return rc, fmt.Errorf("loading request context: %w", err)
	}
	rc.ExistingSessionID = row.Existing.String
	if !row.UserID.Valid {
		return rc, &app.UnknownReferenceError{Field: "user", Name: req.User}
	}
	rc.UserID = row.UserID.String
	if row.Workspace == nil {
		return rc, &app.UnknownReferenceError{Field: "workspace", Name: req.Workspace}
	}

	var ws struct {
		ID                    string          `json:"id"`
		Name                  string          `json:"name"`
		Enabled               bool            `json:"enabled"`
		PersistentProfilePath string          `json:"persistent_profile_path"`
		VolumeMappings        json.RawMessage `json:"volume_mappings"`
		Cores                 float64         `json:"cores"`
		MemoryMB              int             `json:"memory_mb"`
		OnServers             bool            `json:"on_servers"`
	}
	var zones []struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Search   bool   `json:"search_alternate_zones"`
		Priority int    `json:"priority"`
	}
	var groups []struct {
		Name     string `json:"name"`
		Priority int    `json:"priority"`
		events.Permissions
		Expose    bool            `json:"expose_user_environment_vars"`
		SSH       bool            `json:"inject_ssh_keys"`
		RunConfig json.RawMessage `json:"run_config"`
		VolMap    json.RawMessage `json:"volume_mapping"`
		Filter    string          `json:"web_filter_policy"`
		TimeLimit time.Duration   `json:"session_time_limit_ns"`
		Keepalive time.Duration   `json:"keepalive_expiration_ns"`
	}
	var configs []struct {
		ID          string `json:"id"`
		ZoneID      string `json:"zone_id"`
		WorkspaceID string `json:"workspace_id"`
		events.Permissions
	}
	for _, part := range []struct {
		name string
		raw  []byte
		into any
	}{{"workspace", row.Workspace, &ws}, {"zones", row.Zones, &zones}, {"groups", row.Groups, &groups}, {"staging configs", row.Configs, &configs}} {
		if err := json.Unmarshal(part.raw, part.into); err != nil {
			return rc, fmt.Errorf("decoding %s: %w", part.name, err)
		}
	}

	rc.Workspace = domain.Workspace{ID: ws.ID, Name: ws.Name, Enabled: ws.Enabled,
		PersistentProfilePath: ws.PersistentProfilePath, VolumeMappings: ws.VolumeMappings, OnServers: ws.OnServers}
	rc.Cores, rc.MemoryMB = ws.Cores, ws.MemoryMB
	found := false
	for _, z := range zones {
		dz := domain.Zone{ID: z.ID, Name: z.Name, SearchAlternateZones: z.Search, Priority: z.Priority}
		rc.Zones = append(rc.Zones, dz)
		if z.Name == req.Zone {
			rc.Zone, found = dz, true
		}
	}
	if !found {
		return rc, &app.UnknownReferenceError{Field: "zone", Name: req.Zone}
	}
	for _, g := range groups {
		rc.Groups = append(rc.Groups, domain.Group{Name: g.Name, Priority: g.Priority, Permissions: g.Permissions,
			ExposeUserEnvironmentVars: g.Expose, InjectSSHKeys: g.SSH, RunConfig: g.RunConfig,
			VolumeMapping: g.VolMap, WebFilterPolicy: g.Filter,
			Limits: domain.Limits{SessionTimeLimit: g.TimeLimit, KeepaliveExpiration: g.Keepalive}})
	}
	for _, c := range configs {
		rc.Configs = append(rc.Configs, domain.StagingConfig{ID: c.ID, ZoneID: c.ZoneID, WorkspaceID: c.WorkspaceID, Permissions: c.Permissions})
	}
	return rc, nil
}

// Claim takes a staged session of the staging config, started with the
// user's permissions, for the user, giving it the user's limits.
func (t *Tx) Claim(ctx context.Context, c sessions.Claim) (sessions.Session, error) {
	return sessions.ClaimStagedFor(ctx, t.tx, c)
}

// CreateOnDemand inserts the session row an on-demand container will fill.
func (t *Tx) CreateOnDemand(ctx context.Context, n sessions.New) (sessions.Session, error) {
	return sessions.Insert(ctx, t.tx, n)
}

// RecordViolation stores one incompatible setting of a request; a
// redelivered request records it once.
func (t *Tx) RecordViolation(ctx context.Context, id string, v events.StagingViolation, userID, workspaceID string) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO violations
		(id, request_id, user_id, username, workspace_id, workspace, setting, session_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, '')::uuid)
		ON CONFLICT (request_id, setting) DO NOTHING`,
		id, v.RequestID, userID, v.User, workspaceID, v.Workspace, v.Setting, v.SessionID)
	if err != nil {
		return fmt.Errorf("recording violation %s: %w", v.Setting, err)
	}
	return nil
}

// Emit writes an event to the outbox in this transaction.
func (t *Tx) Emit(ctx context.Context, subject, eventType string, data any, requestID string) error {
	_, err := outbox.Emit(ctx, t.tx, t.source, subject, eventType, data, requestID)
	return err
}

// EmitWithID writes an event with a deterministic id, so that announcing
// the same fact again is de-duplicated by the stream.
func (t *Tx) EmitWithID(ctx context.Context, id, subject, eventType string, data any, requestID string) error {
	ev, err := events.NewWithID(id, t.source, eventType, data)
	if err != nil {
		return err
	}
	return outbox.Enqueue(ctx, t.tx, subject, ev, requestID)
}

// Outcome returns the ready announcement of a running session.
func (t *Tx) Outcome(ctx context.Context, sessionID string) (events.SessionReady, error) {
	var r events.SessionReady
	err := t.tx.QueryRowxContext(ctx, `SELECT COALESCE(s.request_id, ''), s.id, COALESCE(u.username, ''), w.name, z.name,
			COALESCE(a.name, ''), COALESCE(sv.name, ''), s.container_id, s.url, s.origin
		FROM sessions s JOIN workspaces w ON w.id = s.workspace_id JOIN zones z ON z.id = s.zone_id
		LEFT JOIN users u ON u.id = s.user_id LEFT JOIN agents a ON a.id = s.agent_id
		LEFT JOIN servers sv ON sv.id = s.server_id
		WHERE s.id = $1`, sessionID).Scan(&r.RequestID, &r.SessionID, &r.User, &r.Workspace, &r.Zone,
		&r.Agent, &r.Server, &r.ContainerID, &r.URL, &r.Origin)
	if err != nil {
		return r, fmt.Errorf("loading outcome of %s: %w", sessionID, err)
	}
	return r, nil
}
