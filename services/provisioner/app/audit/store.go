package audit

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
)

// WatchedAgents are the agents whose Docker engines are watched and
// audited (adapters/postgres).
type WatchedAgents interface {
	// ListWatchedAgents returns every enabled agent, and every disabled one
	// that still hosts live sessions, in endpoint order.
	ListWatchedAgents(ctx context.Context) ([]command.Agent, error)
	// RecordHeartbeat records that the engine at endpoint answered a ping
	// at at: the last_heartbeat_at of every agent using it (never moved
	// back).
	RecordHeartbeat(ctx context.Context, endpoint string, at time.Time) error
}

// AuditedSessions are the sessions the audit judges (adapters/postgres),
// each failed once over every replica, and the lock under which one
// replica at a time reaps an endpoint's orphans.
type AuditedSessions interface {
	WatchedAgents
	// ListContainerAuditCandidates returns the staged, assigning and
	// running sessions on p.AgentIDs that have a container recorded and
	// have not changed within the grace period.
	ListContainerAuditCandidates(ctx context.Context, p ListContainerAuditCandidatesParams) ([]ContainerAuditCandidate, error)
	// GetContainerAuditCandidate reads session id, whatever its status;
	// false when there is no such session (or id is none: it comes from a
	// container's label).
	GetContainerAuditCandidate(ctx context.Context, id string) (ContainerAuditCandidate, bool, error)
	// FailContainerGone fails a session whose container is gone, if it is
	// still exactly as it was read and no other transaction holds it
	// (false otherwise), and returns it with its context.
	FailContainerGone(ctx context.Context, p FailContainerGoneParams) (command.SessionContext, bool, error)
	// ReapOrphans runs reap holding the endpoint's orphan reaping lock;
	// ErrOrphanReapHeld, without running it, when another replica holds it.
	ReapOrphans(ctx context.Context, p ReapOrphansParams, reap func(ctx context.Context) error) error
	// ListSessionStatuses returns the status of each of ids that has a
	// row; ids that are not session ids are ignored.
	ListSessionStatuses(ctx context.Context, ids []string) ([]SessionStatus, error)
	// AnnounceFailedRemoved emits session.destroyed, once, for a failed
	// session whose dead container was removed.
	AnnounceFailedRemoved(ctx context.Context, sc *command.SessionContext, reason string) error
	// AnnounceContainerRemoved emits container.removed, once per
	// container, for an orphan container removed.
	AnnounceContainerRemoved(ctx context.Context, removed events.ContainerRemoved) error
}

// ContainerAuditCandidate is a session that should have a running
// container, as it was when read.
type ContainerAuditCandidate struct {
	SessionID       string          `db:"id"`
	AgentID         string          `db:"agent_id"`
	AgentName       string          `db:"agent_name"`
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

// FailContainerGoneParams names the session whose container is gone.
type FailContainerGoneParams struct {
	// Candidate is the session as it was read before its container was
	// looked for.
	Candidate ContainerAuditCandidate
	// Failure is reason container_gone, what was seen and the detail.
	Failure command.Failure
}

// ErrOrphanReapHeld is returned by ReapOrphans when another replica is
// reaping the endpoint's orphans right now.
var ErrOrphanReapHeld = errors.New("another replica is reaping this endpoint's orphan containers")

// ReapOrphansParams names the endpoint whose orphans are reaped.
type ReapOrphansParams struct {
	// Endpoint is the Docker endpoint, e.g. unix:///var/run/docker.sock.
	Endpoint string
}

// SessionStatus is a session's status, by id.
type SessionStatus struct {
	SessionID string          `db:"id"`
	Status    sessions.Status `db:"status"`
}
