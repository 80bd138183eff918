// Package postgres is the provisioner's state in PostgreSQL: placing a
// session on an agent with its capacity reserved (placement.go), moving
// sessions through their lifecycle together with the events announcing
// each change, written to the outbox in the same transaction
// (lifecycle.go), reconciling staging pools under a row lock per staging
// config (pools.go), and failing sessions whose container is gone, once
// across replicas (container_audit.go). Status changes go through
// libs/sessions, which owns them.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// Store reads and writes the provisioner's state.
type Store struct {
	db *sqlx.DB
	// source is the CloudEvents source of the events it writes.
	source string
}

// New returns a Store writing events as source (e.g. greenroom/provisioner).
func New(conn *sqlx.DB, source string) *Store { return &Store{db: conn, source: source} }

// Workspace is the part of a workspaces row the provisioner uses.
type Workspace struct {
	ID               string         `db:"id"`
	Name             string         `db:"name"`
	Image            string         `db:"image"`
	Enabled          bool           `db:"enabled"`
	Cores            float64        `db:"cores"`
	MemoryMB         int64          `db:"memory_mb"`
	IncludeLabels    pq.StringArray `db:"include_labels"`
	ExcludeLabels    pq.StringArray `db:"exclude_labels"`
	DockerExecConfig []byte         `db:"docker_exec_config"`
	RunConfig        []byte         `db:"run_config"`
	Port             int            `db:"port"`
	ReadinessPath    string         `db:"readiness_path"`
	// HomeDirectory, PersistentProfilePath and VolumeMappings shape the
	// container's mounts (libs/containerconfig).
	HomeDirectory         string `db:"home_directory"`
	PersistentProfilePath string `db:"persistent_profile_path"`
	VolumeMappings        []byte `db:"volume_mappings"`
	// WebFilter is the workspace's web filter policy as JSON
	// (containerconfig.WebFilter), or nil.
	WebFilter []byte `db:"web_filter"`
	// Revision is the workspace's revision (bumped with every change of
	// what shapes its containers).
	Revision int64 `db:"revision"`
	// AssignHook is the workspace's assign_hook (libs/containerconfig),
	// or nil.
	AssignHook []byte `db:"assign_hook"`
	// ServerPoolID is set for a workspace whose sessions go to the fixed
	// servers of a server pool instead of containers.
	ServerPoolID sql.NullString `db:"server_pool_id"`
}

// Agent is where a session's container runs.
type Agent struct {
	ID             string `db:"id"`
	Name           string `db:"name"`
	DockerEndpoint string `db:"docker_endpoint"`
	PublicHost     string `db:"public_host"`
}

// StagingConfig is the part of a staging config a staged session needs.
type StagingConfig struct {
	ID              string  `db:"id"`
	ExpirationHours float64 `db:"expiration_hours"`
}

// SessionContext is a session with the names and settings around it.
type SessionContext struct {
	Session   sessions.Session
	Workspace Workspace
	// Zone is the name of the session's zone.
	Zone string
	// ZoneDomains are the zone's allow_origin_domain and
	// upstream_auth_address, given to the container when it is made.
	ZoneDomains ZoneDomains
	// Agent is nil until the session is placed, and for a session on a
	// server.
	Agent *Agent
	// Server is the name of the fixed server a session of a server pool
	// was assigned to, or "".
	Server string
	// StagingConfig is nil for on-demand sessions.
	StagingConfig *StagingConfig
	// Username is empty for a staged session nobody was given yet.
	Username string
}

// ZoneDomains are a zone's two domain settings.
type ZoneDomains struct {
	Name                string `db:"name"`
	AllowOriginDomain   string `db:"allow_origin_domain"`
	UpstreamAuthAddress string `db:"upstream_auth_address"`
}

// webFilterJSON selects the web filter policy with id col as JSON.
func webFilterJSON(col string) string {
	return `(SELECT row_to_json(p) FROM (SELECT name, default_allow, allowed_domains, denied_domains
		FROM web_filter_policies WHERE id = ` + col + `) p)`
}

// RequestID is the request the session serves, or "".
func (sc SessionContext) RequestID() string { return sc.Session.RequestID.String }

// StagingConfigID is the session's staging config, or "".
func (sc SessionContext) StagingConfigID() string { return sc.Session.StagingConfigID.String }

// LoadSession loads session id with its context. sessions.ErrNotFound
// when there is no such session.
func (s *Store) LoadSession(ctx context.Context, id string) (SessionContext, error) {
	return loadContext(ctx, s.db, id)
}

func loadContext(ctx context.Context, q sessions.Queryer, id string) (SessionContext, error) {
	var sc SessionContext
	var err error
	if sc.Session, err = sessions.Get(ctx, q, id); err != nil {
		return sc, err
	}
	return sc, completeContext(ctx, q, &sc)
}

// completeContext loads what surrounds sc.Session.
func completeContext(ctx context.Context, q sessions.Queryer, sc *SessionContext) error {
	s := sc.Session
	if err := q.GetContext(ctx, &sc.Workspace, `SELECT id, name, image, enabled, cores, memory_mb,
		include_labels, exclude_labels, docker_exec_config, run_config, port, readiness_path, server_pool_id,
		home_directory, persistent_profile_path, volume_mappings, revision, assign_hook,
		`+webFilterJSON("web_filter_policy_id")+` AS web_filter
		FROM workspaces WHERE id = $1`, s.WorkspaceID); err != nil {
		return fmt.Errorf("loading workspace of session %s: %w", s.ID, err)
	}
	if err := q.GetContext(ctx, &sc.ZoneDomains, `SELECT name, allow_origin_domain, upstream_auth_address FROM zones WHERE id = $1`, s.ZoneID); err != nil {
		return fmt.Errorf("loading zone of session %s: %w", s.ID, err)
	}
	sc.Zone = sc.ZoneDomains.Name
	sc.Agent = nil
	if s.AgentID.Valid {
		var a Agent
		if err := q.GetContext(ctx, &a, `SELECT id, name, docker_endpoint, public_host FROM agents WHERE id = $1`, s.AgentID.String); err != nil {
			return fmt.Errorf("loading agent of session %s: %w", s.ID, err)
		}
		sc.Agent = &a
	}
	sc.Server = ""
	if s.ServerID.Valid {
		if err := q.GetContext(ctx, &sc.Server, `SELECT name FROM servers WHERE id = $1`, s.ServerID.String); err != nil {
			return fmt.Errorf("loading server of session %s: %w", s.ID, err)
		}
	}
	sc.StagingConfig = nil
	if s.StagingConfigID.Valid {
		var c StagingConfig
		if err := q.GetContext(ctx, &c, `SELECT id, expiration_hours FROM staging_configs WHERE id = $1`, s.StagingConfigID.String); err != nil {
			return fmt.Errorf("loading staging config of session %s: %w", s.ID, err)
		}
		sc.StagingConfig = &c
	}
	sc.Username = ""
	if s.UserID.Valid {
		err := q.GetContext(ctx, &sc.Username, `SELECT username FROM users WHERE id = $1`, s.UserID.String)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("loading user of session %s: %w", s.ID, err)
		}
	}
	return nil
}

// lockSession takes session id's row lock for the transaction, so that
// the provisioner's decisions about one session never interleave.
func lockSession(ctx context.Context, tx *sqlx.Tx, id string) error {
	var got string
	err := tx.GetContext(ctx, &got, `SELECT id FROM sessions WHERE id = $1 FOR UPDATE`, id)
	if db.IsNotFound(err) {
		return fmt.Errorf("%w: %s", sessions.ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("locking session %s: %w", id, err)
	}
	return nil
}

// emit writes an event to the outbox in tx.
func (s *Store) emit(ctx context.Context, tx *sqlx.Tx, eventType string, data any, requestID string) error {
	_, err := outbox.Emit(ctx, tx, s.source, eventType, eventType, data, requestID)
	return err
}

// SessionUser is the user a session is made for, with what the user's
// effective group says to bring into the container.
type SessionUser struct {
	ID            string         `db:"id"`
	Name          string         `db:"username"`
	SSHPublicKeys pq.StringArray `db:"ssh_public_keys"`
	Attributes    []byte         `db:"attributes"`
	// Group is the user's effective group (the best priority, then the
	// name), nil when the user is in none.
	Group *EffectiveGroup
}

// EffectiveGroup is the settings of a user's effective group that shape a
// container.
type EffectiveGroup struct {
	Name                      string `db:"name"`
	InjectSSHKeys             bool   `db:"inject_ssh_keys"`
	ExposeUserEnvironmentVars bool   `db:"expose_user_environment_vars"`
	RunConfig                 []byte `db:"run_config"`
	VolumeMapping             []byte `db:"volume_mapping"`
	// WebFilter is the group's web filter policy as JSON, or nil.
	WebFilter []byte `db:"web_filter"`
}

// LoadSessionUser loads the user with id and their effective group.
func (s *Store) LoadSessionUser(ctx context.Context, id string) (SessionUser, error) {
	var u SessionUser
	if err := s.db.GetContext(ctx, &u, `SELECT id, username, ssh_public_keys, attributes FROM users WHERE id = $1`, id); err != nil {
		return u, fmt.Errorf("loading user %s: %w", id, err)
	}
	var g EffectiveGroup
	err := s.db.GetContext(ctx, &g, `SELECT g.name, g.inject_ssh_keys, g.expose_user_environment_vars,
			g.run_config, g.volume_mapping, `+webFilterJSON("g.web_filter_policy_id")+` AS web_filter
		FROM groups g JOIN user_groups ug ON ug.group_id = g.id
		WHERE ug.user_id = $1 ORDER BY g.priority, g.name LIMIT 1`, id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return u, fmt.Errorf("loading the effective group of user %s: %w", id, err)
	default:
		u.Group = &g
	}
	return u, nil
}
