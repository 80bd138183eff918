package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// ListEnabledAgents returns every enabled agent, by endpoint: the Docker
// engines whose containers the container auditor checks.
func (s *Store) ListEnabledAgents(ctx context.Context) ([]Agent, error) {
	var agents []Agent
	if err := s.db.SelectContext(ctx, &agents, `SELECT id, name, docker_endpoint, public_host
		FROM agents WHERE enabled ORDER BY docker_endpoint, name`); err != nil {
		return nil, fmt.Errorf("error listing enabled agents: %w", err)
	}
	return agents, nil
}

// ContainerAuditCandidate is a session that should have a running
// container, as it was when read.
type ContainerAuditCandidate struct {
	SessionID       string          `db:"id"`
	AgentID         string          `db:"agent_id"`
	ContainerID     string          `db:"container_id"`
	Status          sessions.Status `db:"status"`
	StagingConfigID sql.NullString  `db:"staging_config_id"`
	UpdatedAt       time.Time       `db:"updated_at"`
}

// ListContainerAuditCandidatesParams selects the sessions to check.
type ListContainerAuditCandidatesParams struct {
	// AgentIDs are the agents of one Docker endpoint.
	AgentIDs []string
	// GracePeriod leaves out sessions whose row changed more recently than
	// this (by the database's clock); zero or less leaves out none.
	GracePeriod time.Duration
}

// ListContainerAuditCandidates returns the staged, assigning and running
// sessions on p.AgentIDs that have a container recorded, and have not
// changed within the grace period. A session still provisioning is never
// one: its container may be being created right now, and the expiry
// service's provisioning timeout takes care of it.
func (s *Store) ListContainerAuditCandidates(ctx context.Context, p ListContainerAuditCandidatesParams) ([]ContainerAuditCandidate, error) {
	var out []ContainerAuditCandidate
	err := s.db.SelectContext(ctx, &out, `SELECT id, agent_id, container_id, status, staging_config_id, updated_at
		FROM sessions
		WHERE agent_id = ANY($1::uuid[])
		  AND status IN ('staged', 'assigning', 'running')
		  AND container_id <> ''
		  AND updated_at < now() - make_interval(secs => $2)
		ORDER BY updated_at, id`, pq.Array(p.AgentIDs), max(p.GracePeriod, 0).Seconds())
	if err != nil {
		return nil, fmt.Errorf("error listing sessions to audit: %w", err)
	}
	return out, nil
}

// FailContainerGoneParams names the session whose container is gone.
type FailContainerGoneParams struct {
	// Candidate is the session as it was read before its container was
	// looked for.
	Candidate ContainerAuditCandidate
	// Failure is reason container_gone, what was seen and the detail.
	Failure Failure
}

// FailContainerGone moves a session whose container is gone to failed
// and emits session.failed, in one transaction. The row is taken with FOR
// UPDATE SKIP LOCKED and only if it is still exactly as it was read (same
// status and container, not changed since): a session another replica is
// failing right now, that a claim or a destroy is moving, or that changed
// since it was read is skipped (false), and the next pass judges it
// afresh. It returns the failed session with its context.
func (s *Store) FailContainerGone(ctx context.Context, p FailContainerGoneParams) (SessionContext, bool, error) {
	c := p.Candidate
	var sc SessionContext
	failed := false
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var id string
		err := tx.GetContext(ctx, &id, `SELECT id FROM sessions
			WHERE id = $1 AND status = $2 AND container_id = $3 AND updated_at <= $4
			FOR UPDATE SKIP LOCKED`, c.SessionID, c.Status, c.ContainerID, c.UpdatedAt)
		if db.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("error locking session %s: %w", c.SessionID, err)
		}
		if sc, err = loadContext(ctx, tx, id); err != nil {
			return err
		}
		if err := s.fail(ctx, tx, &sc, c.Status, p.Failure); err != nil {
			return err
		}
		failed = true
		return nil
	})
	if err != nil {
		return SessionContext{}, false, fmt.Errorf("error failing session %s whose container is gone: %w", c.SessionID, err)
	}
	return sc, failed, nil
}
