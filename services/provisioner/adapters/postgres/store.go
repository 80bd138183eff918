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
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
)

// Store reads and writes the provisioner's state.
type Store struct {
	db *sqlx.DB
	// source is the CloudEvents source of the events it writes.
	source string
	// direct publishes the outcomes a requester waits for (session.ready,
	// session.failed) right after their commit; nil leaves them to the
	// outbox relays.
	direct *outbox.Direct
}

// The interfaces of the use cases the Store implements.
var (
	_ command.SessionStore  = (*Store)(nil)
	_ staging.Pools         = (*Store)(nil)
	_ audit.AuditedSessions = (*Store)(nil)
)

// New returns a Store writing events as source (e.g. greenroom/provisioner).
func New(conn *sqlx.DB, source string) *Store { return &Store{db: conn, source: source} }

// PublishOutcomesDirectly has the store publish session.ready and
// session.failed itself right after their commit (outbox.Direct), one hop
// fewer than the relay on a hand-off's path.
func (s *Store) PublishOutcomesDirectly(d *outbox.Direct) *Store {
	s.direct = d
	return s
}

// webFilterJSON selects the web filter policy with id col as JSON.
func webFilterJSON(col string) string {
	return `(SELECT row_to_json(p) FROM (SELECT name, default_allow, allowed_domains, denied_domains
		FROM web_filter_policies WHERE id = ` + col + `) p)`
}

// LoadSession loads session id with its context. sessions.ErrNotFound
// when there is no such session.
func (s *Store) LoadSession(ctx context.Context, id string) (command.SessionContext, error) {
	return loadContext(ctx, s.db, id)
}

func loadContext(ctx context.Context, q sessions.Queryer, id string) (command.SessionContext, error) {
	var sc command.SessionContext
	var err error
	if sc.Session, err = sessions.Get(ctx, q, id); err != nil {
		return sc, err
	}
	return sc, completeContext(ctx, q, &sc)
}

// completeContext loads what surrounds sc.Session, in one round trip: it
// is on the hot path of every hand-off.
func completeContext(ctx context.Context, q sessions.Queryer, sc *command.SessionContext) error {
	s := sc.Session
	var r struct {
		Workspace struct {
			command.Workspace
			IncludeLabels pq.StringArray `db:"include_labels"`
			ExcludeLabels pq.StringArray `db:"exclude_labels"`
		} `db:"w"`
		Zone          command.ZoneDomains `db:"z"`
		AgentID       sql.NullString      `db:"agent_id"`
		AgentName     sql.NullString      `db:"agent_name"`
		AgentEndpoint sql.NullString      `db:"agent_docker_endpoint"`
		AgentAddress  sql.NullString      `db:"agent_internal_address"`
		Server        sql.NullString      `db:"server_name"`
		ConfigID      sql.NullString      `db:"staging_config_id"`
		Expiration    sql.NullFloat64     `db:"expiration_hours"`
		Username      sql.NullString      `db:"username"`
	}
	err := q.GetContext(ctx, &r, `SELECT w.id AS "w.id", w.name AS "w.name", w.image AS "w.image",
			w.enabled AS "w.enabled", w.cores AS "w.cores", w.memory_mb AS "w.memory_mb",
			w.include_labels AS "w.include_labels", w.exclude_labels AS "w.exclude_labels",
			w.docker_exec_config AS "w.docker_exec_config", w.run_config AS "w.run_config", w.port AS "w.port",
			w.readiness_path AS "w.readiness_path", w.server_pool_id AS "w.server_pool_id",
			w.home_directory AS "w.home_directory", w.persistent_profile_path AS "w.persistent_profile_path",
			w.volume_mappings AS "w.volume_mappings", w.revision AS "w.revision", w.assign_hook AS "w.assign_hook",
			`+webFilterJSON("w.web_filter_policy_id")+` AS "w.web_filter",
			z.name AS "z.name", z.allow_origin_domain AS "z.allow_origin_domain",
			z.upstream_auth_address AS "z.upstream_auth_address",
			a.id AS agent_id, a.name AS agent_name, a.docker_endpoint AS agent_docker_endpoint,
			a.internal_address AS agent_internal_address, sv.name AS server_name,
			c.id AS staging_config_id, c.expiration_hours, u.username
		FROM workspaces w
		JOIN zones z ON z.id = $2
		LEFT JOIN agents a ON a.id = $3
		LEFT JOIN servers sv ON sv.id = $4
		LEFT JOIN staging_configs c ON c.id = $5
		LEFT JOIN users u ON u.id = $6
		WHERE w.id = $1`,
		s.WorkspaceID, s.ZoneID, s.AgentID, s.ServerID, s.StagingConfigID, s.UserID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("loading workspace and zone of session %s: %w", s.ID, err)
	case err != nil:
		return fmt.Errorf("loading the context of session %s: %w", s.ID, err)
	}
	sc.Workspace, sc.ZoneDomains, sc.Zone = r.Workspace.Workspace, r.Zone, r.Zone.Name
	sc.Workspace.IncludeLabels, sc.Workspace.ExcludeLabels = r.Workspace.IncludeLabels, r.Workspace.ExcludeLabels
	sc.Agent, sc.Server, sc.StagingConfig, sc.Username = nil, "", nil, r.Username.String
	if s.AgentID.Valid {
		if !r.AgentID.Valid {
			return fmt.Errorf("loading agent of session %s: %w", s.ID, sql.ErrNoRows)
		}
		sc.Agent = &command.Agent{ID: r.AgentID.String, Name: r.AgentName.String, DockerEndpoint: r.AgentEndpoint.String, InternalAddress: r.AgentAddress.String}
	}
	if s.ServerID.Valid {
		if !r.Server.Valid {
			return fmt.Errorf("loading server of session %s: %w", s.ID, sql.ErrNoRows)
		}
		sc.Server = r.Server.String
	}
	if s.StagingConfigID.Valid {
		if !r.ConfigID.Valid {
			return fmt.Errorf("loading staging config of session %s: %w", s.ID, sql.ErrNoRows)
		}
		sc.StagingConfig = &command.StagingConfig{ID: r.ConfigID.String, ExpirationHours: r.Expiration.Float64}
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

// emitOutcome announces the outcome of sc's request (session.ready or
// session.failed) to the requesting service its request came from
// (events.SubjectFor).
func (s *Store) emitOutcome(ctx context.Context, tx *sqlx.Tx, sc *command.SessionContext, eventType string, data any, requestID string) error {
	_, err := outbox.Emit(ctx, tx, s.source, events.SubjectFor(eventType, sc.Session.Requester), eventType, data, requestID)
	return err
}

// LoadSessionUser loads the user with id and their effective group.
func (s *Store) LoadSessionUser(ctx context.Context, id string) (command.SessionUser, error) {
	var row struct {
		command.SessionUser
		SSHPublicKeys pq.StringArray `db:"ssh_public_keys"`
	}
	if err := s.db.GetContext(ctx, &row, `SELECT id, username, ssh_public_keys, attributes FROM users WHERE id = $1`, id); err != nil {
		return command.SessionUser{}, fmt.Errorf("loading user %s: %w", id, err)
	}
	u := row.SessionUser
	u.SSHPublicKeys = row.SSHPublicKeys
	var g command.EffectiveGroup
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
