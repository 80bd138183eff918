package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
)

// ListWatchedAgents returns, by endpoint, the Docker engines whose
// containers are watched and audited: every enabled agent (but one the
// autoscaler is still making or deleting), and every
// disabled one that still hosts live sessions (an agent being drained still
// has sessions whose containers may die).
func (s *Store) ListWatchedAgents(ctx context.Context) ([]command.Agent, error) {
	var agents []command.Agent
	if err := s.db.SelectContext(ctx, &agents, `SELECT id, name, docker_endpoint, internal_address
		FROM agents a
		WHERE (enabled AND lifecycle IN ('active', 'draining')) OR EXISTS (SELECT 1 FROM sessions s WHERE s.agent_id = a.id AND s.status NOT IN ('destroyed', 'failed'))
		ORDER BY docker_endpoint, name`); err != nil {
		return nil, fmt.Errorf("error listing watched agents: %w", err)
	}
	return agents, nil
}

// RecordHeartbeat moves the last_heartbeat_at of the agents using the
// engine at endpoint to at, never back.
func (s *Store) RecordHeartbeat(ctx context.Context, endpoint string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE agents SET last_heartbeat_at = $2
		WHERE docker_endpoint = $1 AND lifecycle <> 'deleted' AND (last_heartbeat_at IS NULL OR last_heartbeat_at < $2)`, endpoint, at); err != nil {
		return fmt.Errorf("recording the heartbeat of %s: %w", endpoint, err)
	}
	return nil
}

// ListContainerAuditCandidates returns the staged, assigning and running
// sessions on p.AgentIDs that have a container recorded, and have not
// changed within the grace period. A session still provisioning is never
// one: its container may be being created right now, and the expiry
// service's provisioning timeout takes care of it.
func (s *Store) ListContainerAuditCandidates(ctx context.Context, p audit.ListContainerAuditCandidatesParams) ([]audit.ContainerAuditCandidate, error) {
	var out []audit.ContainerAuditCandidate
	err := s.db.SelectContext(ctx, &out, `SELECT s.id, s.agent_id, a.name AS agent_name, s.container_id, s.status,
			s.staging_config_id, s.updated_at
		FROM sessions s JOIN agents a ON a.id = s.agent_id
		WHERE s.agent_id = ANY($1::uuid[])
		  AND s.status IN ('staged', 'assigning', 'running')
		  AND s.container_id <> ''
		  AND s.updated_at < now() - make_interval(secs => $2)
		ORDER BY s.updated_at, s.id`, pq.Array(p.AgentIDs), max(p.GracePeriod, 0).Seconds())
	if err != nil {
		return nil, fmt.Errorf("error listing sessions to audit: %w", err)
	}
	return out, nil
}

// FailContainerGone moves a session whose container is gone to failed
// and emits session.failed, in one transaction. The row is taken with FOR
// UPDATE SKIP LOCKED and only if it is still exactly as it was read (same
// status and container, not changed since): a session another replica is
// failing right now, that a claim or a destroy is moving, or that changed
// since it was read is skipped (false), and the next pass judges it
// afresh. It returns the failed session with its context.
func (s *Store) FailContainerGone(ctx context.Context, p audit.FailContainerGoneParams) (command.SessionContext, bool, error) {
	c := p.Candidate
	var sc command.SessionContext
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
		return command.SessionContext{}, false, fmt.Errorf("error failing session %s whose container is gone: %w", c.SessionID, err)
	}
	return sc, failed, nil
}

// GetContainerAuditCandidate reads session id as the container auditor
// judges it, whatever its status; false when there is no such session
// (or id is no session id at all: it comes from a container's label).
func (s *Store) GetContainerAuditCandidate(ctx context.Context, id string) (audit.ContainerAuditCandidate, bool, error) {
	var c audit.ContainerAuditCandidate
	if uuid.Validate(id) != nil {
		return c, false, nil
	}
	err := s.db.GetContext(ctx, &c, `SELECT s.id, s.agent_id, a.name AS agent_name, s.container_id, s.status,
			s.staging_config_id, s.updated_at
		FROM sessions s JOIN agents a ON a.id = s.agent_id
		WHERE s.id = $1`, id)
	if db.IsNotFound(err) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("error reading session %s: %w", id, err)
	}
	return c, true, nil
}

// orphanReapLockClass is the first key of the transaction-level advisory
// locks (class, hashtext(endpoint)) under which one replica at a time
// reaps the orphan containers of one Docker endpoint.
const orphanReapLockClass int32 = 0x6772_6f72 // "gror"

// ReapOrphans runs reap while holding the endpoint's orphan reaping lock,
// a transaction-level advisory lock, so that one replica at a time lists
// and removes an endpoint's orphan containers and each is removed (and
// counted) once: the next holder lists the endpoint after the last one
// removed what it found. ErrOrphanReapHeld, without running reap, when
// another replica holds it. The lock goes with the transaction, also when
// the replica dies.
func (s *Store) ReapOrphans(ctx context.Context, p audit.ReapOrphansParams, reap func(ctx context.Context) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("error beginning orphan reaping on %s: %w", p.Endpoint, err)
	}
	defer func() { _ = tx.Rollback() }()
	var mine bool
	if err := tx.GetContext(ctx, &mine, `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`,
		orphanReapLockClass, p.Endpoint); err != nil {
		return fmt.Errorf("error taking the orphan reaping lock of %s: %w", p.Endpoint, err)
	}
	if !mine {
		return audit.ErrOrphanReapHeld
	}
	if err := reap(ctx); err != nil {
		return err
	}
	return tx.Commit()
}

// ListSessionStatuses returns the status of each of ids that has a row;
// ids that are not session ids (they come from containers' labels) are
// ignored.
func (s *Store) ListSessionStatuses(ctx context.Context, ids []string) ([]audit.SessionStatus, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if uuid.Validate(id) == nil {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return nil, nil
	}
	var out []audit.SessionStatus
	if err := s.db.SelectContext(ctx, &out, `SELECT id, status FROM sessions WHERE id = ANY($1::uuid[])`,
		pq.Array(valid)); err != nil {
		return nil, fmt.Errorf("error reading the sessions of containers: %w", err)
	}
	return out, nil
}

// AnnounceContainerRemoved emits container.removed for an orphan container
// the collector removed. It changes no state, so it has a transaction of
// its own; its event id is derived from the container, so that a
// container removed twice (two replicas, before the reaping lock) is
// announced once.
func (s *Store) AnnounceContainerRemoved(ctx context.Context, removed events.ContainerRemoved) error {
	ev, err := events.NewWithID("container-removed-"+removed.ContainerID, s.source, events.TypeContainerRemoved, removed)
	if err != nil {
		return err
	}
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		return outbox.Enqueue(ctx, tx, events.TypeContainerRemoved, ev, "")
	})
}
