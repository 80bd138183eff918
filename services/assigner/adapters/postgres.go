// Package adapters performs the assigner's plan in PostgreSQL: it loads what
// the rules need, claims staged sessions (libs/sessions.ClaimStaged, one
// statement), creates on-demand session rows, records violations, and
// writes every event into the outbox in the same transaction.
package adapters

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/assigner/domain"
)

// UnknownReferenceError says a request named something that does not exist.
type UnknownReferenceError struct {
	Field string
	Name  string
}

func (e *UnknownReferenceError) Error() string {
	return fmt.Sprintf("unknown %s %q", e.Field, e.Name)
}

// Store is the assigner's database.
type Store struct {
	db     *sqlx.DB
	source string
}

// NewStore returns a Store; source is the CloudEvents source of events it
// writes.
func NewStore(conn *sqlx.DB, source string) *Store { return &Store{db: conn, source: source} }

// InTx runs fn in one transaction: whatever fn claims, creates and emits
// commits together or not at all.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error { return fn(&Tx{tx: tx, source: s.source}) })
}

// Tx is one request's unit of work.
type Tx struct {
	tx     *sqlx.Tx
	source string
}

// RequestContext is what the rules need to plan one request.
type RequestContext struct {
	UserID    string
	Workspace domain.Workspace
	Cores     float64
	MemoryMB  int
	Zone      domain.Zone
	Zones     []domain.Zone
	Groups    []domain.Group
	Configs   []domain.StagingConfig
}

// ZoneName returns the name of a zone of the context.
func (rc RequestContext) ZoneName(id string) string {
	for _, z := range rc.Zones {
		if z.ID == id {
			return z.Name
		}
	}
	return ""
}

// ExistingSession returns the session already made for requestID, if any.
func (t *Tx) ExistingSession(ctx context.Context, requestID string) (sessions.Session, bool, error) {
	s, err := sessions.GetByRequestID(ctx, t.tx, requestID)
	if errors.Is(err, sessions.ErrNotFound) {
		return sessions.Session{}, false, nil
	}
	return s, err == nil, err
}

// Load reads the user, workspace, zones, groups and staging configs of req.
func (t *Tx) Load(ctx context.Context, req events.SessionRequested) (RequestContext, error) {
	var rc RequestContext
	err := t.tx.GetContext(ctx, &rc.UserID, `SELECT id FROM users WHERE username = $1`, req.User)
	if errors.Is(err, sql.ErrNoRows) {
		return rc, &UnknownReferenceError{Field: "user", Name: req.User}
	} else if err != nil {
		return rc, fmt.Errorf("loading user: %w", err)
	}

	var ws struct {
		ID                    string          `db:"id"`
		Name                  string          `db:"name"`
		Enabled               bool            `db:"enabled"`
		PersistentProfilePath string          `db:"persistent_profile_path"`
		VolumeMappings        json.RawMessage `db:"volume_mappings"`
		Cores                 float64         `db:"cores"`
		MemoryMB              int             `db:"memory_mb"`
	}
	err = t.tx.GetContext(ctx, &ws, `SELECT id, name, enabled, persistent_profile_path, volume_mappings, cores, memory_mb
		FROM workspaces WHERE name = $1`, req.Workspace)
	if errors.Is(err, sql.ErrNoRows) {
		return rc, &UnknownReferenceError{Field: "workspace", Name: req.Workspace}
	} else if err != nil {
		return rc, fmt.Errorf("loading workspace: %w", err)
	}
	rc.Workspace = domain.Workspace{ID: ws.ID, Name: ws.Name, Enabled: ws.Enabled,
		PersistentProfilePath: ws.PersistentProfilePath, VolumeMappings: ws.VolumeMappings}
	rc.Cores, rc.MemoryMB = ws.Cores, ws.MemoryMB

	var zones []struct {
		ID       string `db:"id"`
		Name     string `db:"name"`
		Search   bool   `db:"search_alternate_zones"`
		Priority int    `db:"priority"`
	}
	if err := t.tx.SelectContext(ctx, &zones, `SELECT id, name, search_alternate_zones, priority FROM zones`); err != nil {
		return rc, fmt.Errorf("loading zones: %w", err)
	}
	found := false
	for _, z := range zones {
		dz := domain.Zone{ID: z.ID, Name: z.Name, SearchAlternateZones: z.Search, Priority: z.Priority}
		rc.Zones = append(rc.Zones, dz)
		if z.Name == req.Zone {
			rc.Zone, found = dz, true
		}
	}
	if !found {
		return rc, &UnknownReferenceError{Field: "zone", Name: req.Zone}
	}

	var groups []struct {
		Name     string `db:"name"`
		Priority int    `db:"priority"`
		events.Permissions
		Expose    bool            `db:"expose_user_environment_vars"`
		SSH       bool            `db:"inject_ssh_keys"`
		RunConfig json.RawMessage `db:"run_config"`
		VolMap    json.RawMessage `db:"volume_mapping"`
		Filter    string          `db:"web_filter_policy"`
	}
	if err := t.tx.SelectContext(ctx, &groups, `SELECT g.name, g.priority, g.allow_audio, g.allow_clipboard_down,
			g.allow_clipboard_up, g.allow_downloads, g.allow_microphone, g.allow_uploads, g.allow_gamepad,
			g.expose_user_environment_vars, g.inject_ssh_keys, g.run_config, g.volume_mapping, g.web_filter_policy
		FROM groups g JOIN user_groups ug ON ug.group_id = g.id WHERE ug.user_id = $1`, rc.UserID); err != nil {
		return rc, fmt.Errorf("loading groups: %w", err)
	}
	for _, g := range groups {
		rc.Groups = append(rc.Groups, domain.Group{Name: g.Name, Priority: g.Priority, Permissions: g.Permissions,
			ExposeUserEnvironmentVars: g.Expose, InjectSSHKeys: g.SSH, RunConfig: g.RunConfig,
			VolumeMapping: g.VolMap, WebFilterPolicy: g.Filter})
	}

	var configs []struct {
		ID          string `db:"id"`
		ZoneID      string `db:"zone_id"`
		WorkspaceID string `db:"workspace_id"`
		events.Permissions
	}
	if err := t.tx.SelectContext(ctx, &configs, `SELECT id, zone_id, workspace_id, allow_audio, allow_clipboard_down,
			allow_clipboard_up, allow_downloads, allow_microphone, allow_uploads, allow_gamepad
		FROM staging_configs WHERE workspace_id = $1 AND deleted_at IS NULL`, rc.Workspace.ID); err != nil {
		return rc, fmt.Errorf("loading staging configs: %w", err)
	}
	for _, c := range configs {
		rc.Configs = append(rc.Configs, domain.StagingConfig{ID: c.ID, ZoneID: c.ZoneID, WorkspaceID: c.WorkspaceID, Permissions: c.Permissions})
	}
	return rc, nil
}

// Claim takes a staged session of the staging config, started with the
// user's permissions, for the user.
func (t *Tx) Claim(ctx context.Context, stagingConfigID, userID, requestID string, perms events.Permissions) (sessions.Session, error) {
	return sessions.ClaimStaged(ctx, t.tx, stagingConfigID, userID, requestID, perms)
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
			COALESCE(a.name, ''), s.container_id, s.url, s.origin
		FROM sessions s JOIN workspaces w ON w.id = s.workspace_id JOIN zones z ON z.id = s.zone_id
		LEFT JOIN users u ON u.id = s.user_id LEFT JOIN agents a ON a.id = s.agent_id
		WHERE s.id = $1`, sessionID).Scan(&r.RequestID, &r.SessionID, &r.User, &r.Workspace, &r.Zone,
		&r.Agent, &r.ContainerID, &r.URL, &r.Origin)
	if err != nil {
		return r, fmt.Errorf("loading outcome of %s: %w", sessionID, err)
	}
	return r, nil
}
