package command

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// SessionStore is the provisioner's state (adapters/postgres): where
// sessions are placed, and their lifecycle.
type SessionStore interface {
	Placements
	Sessions
}

// Placements put a session where it runs, deciding under locks so that no
// number of replicas over-commits an agent or a server. A workspace that
// is disabled, or no room, fails the session in the same transaction, and
// the Failure says why; ErrNotProvisioning when the session has moved on.
type Placements interface {
	// ServerPoolTargets returns, when session id's workspace has a server
	// pool, that pool's enabled servers in zones, to be checked before
	// PlaceOnServer; onServer is false for a workspace of containers.
	ServerPoolTargets(ctx context.Context, id string, zones []string) (targets []ServerTarget, onServer bool, err error)
	// PlaceSession puts session id on an agent with capacity, trying
	// zones in order and passing over agents whose engine outages knows
	// to be down (domain.Agent.Outage). A session placed by an earlier
	// delivery keeps its agent.
	PlaceSession(ctx context.Context, id string, zones []string, outages EngineOutages) (SessionContext, *Failure, error)
	// PlaceOnServer gives session id to the reachable server (checked maps
	// a server's id to why it could not be reached, "" when it could)
	// with the fewest sessions, trying search's zones in order, and moves
	// it to running (session.ready, saying which step of search served
	// it).
	PlaceOnServer(ctx context.Context, id string, search domain.ZoneSearch, checked map[string]string) (SessionContext, *Failure, error)
}

// Sessions loads sessions and moves them through their lifecycle, each
// transition with the events announcing it. A transition of a session that
// is no longer in the status it starts from returns sessions.ErrStale;
// those taking a *SessionContext update it to the session as it is now.
type Sessions interface {
	// LoadSession loads session id with its context; sessions.ErrNotFound
	// when there is none.
	LoadSession(ctx context.Context, id string) (SessionContext, error)
	// LoadSessionUser loads the user with id and their effective group.
	LoadSessionUser(ctx context.Context, id string) (SessionUser, error)

	// SetAssignSecret stores the secret of the container about to be made
	// for a session still provisioning.
	SetAssignSecret(ctx context.Context, sc *SessionContext, secret sessions.Secret) error
	// RecordContainer stores the container of a session still
	// provisioning, announcing a container not recorded before
	// (container.created).
	RecordContainer(ctx context.Context, sc *SessionContext, containerID string, hostPort int, url, upstreamURL string) error
	// MarkStaged moves a staged session whose container answers to staged
	// (session.staged).
	MarkStaged(ctx context.Context, sc *SessionContext, now time.Time) error
	// MarkRunning moves an on-demand session whose container answers to
	// running (session.ready, saying which step of its request's zone
	// search served it).
	MarkRunning(ctx context.Context, sc *SessionContext, served domain.ZoneServed) error
	// CompleteAssign moves a claimed staged session to running
	// (session.ready, with served as the assigner's claim said, then
	// session.assign_ran with ran).
	CompleteAssign(ctx context.Context, sc *SessionContext, served domain.ZoneServed, ran events.AssignRan) error
	// MarkFirstLaunched records that the first_launch command ran for a
	// session still in status `in`.
	MarkFirstLaunched(ctx context.Context, sc *SessionContext, in sessions.Status, at time.Time) error
	// FailCreation fails a session still provisioning (session.failed).
	FailCreation(ctx context.Context, sc *SessionContext, f Failure) error
	// FailSession fails a session in status from (session.failed, and
	// session.assign_ran when f carries one).
	FailSession(ctx context.Context, sc *SessionContext, from sessions.Status, f Failure) error

	// BeginDestroy moves a live session to destroying and returns it as it
	// is now; one already destroying, destroyed or failed is returned
	// unchanged.
	BeginDestroy(ctx context.Context, id, reason string) (SessionContext, error)
	// FinishDestroy moves a destroying session, whose container is gone,
	// to destroyed (session.destroyed, its cause events.DestroyCause of
	// reason).
	FinishDestroy(ctx context.Context, sc *SessionContext, reason string) error
	// AnnounceFailedRemoved emits session.destroyed, once, for a failed
	// session whose container was removed (its cause
	// events.DestroyCauseOfFailed of reason).
	AnnounceFailedRemoved(ctx context.Context, sc *SessionContext, reason string) error
}

// ErrNotProvisioning means the session has left status provisioning (it
// was failed by the expiry service, destroyed, or already provisioned by an
// earlier delivery), so there is nothing to provision.
var ErrNotProvisioning = errors.New("session is not provisioning")

// Failure is why a session failed, as session.failed reports it.
type Failure struct {
	Reason string
	Detail string
	// Observed, when set, is what was seen, recorded with Reason as the
	// session's failure_reason ("container_gone: exited (code 137)");
	// without it failure_reason is Reason alone.
	Observed string
	// AssignRan, when set, is a claimed staged session's assign step,
	// announced (session.assign_ran) in the transaction that fails it.
	AssignRan *events.AssignRan
}

// Recorded is the session's failure_reason.
func (f Failure) Recorded() string { return events.RecordedFailure(f.Reason, f.Observed) }

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

// RequestID is the request the session serves, or "".
func (sc SessionContext) RequestID() string { return sc.Session.RequestID.String }

// StagingConfigID is the session's staging config, or "".
func (sc SessionContext) StagingConfigID() string { return sc.Session.StagingConfigID.String }

// Workspace is the part of a workspaces row the provisioner uses.
type Workspace struct {
	ID               string   `db:"id"`
	Name             string   `db:"name"`
	Image            string   `db:"image"`
	Enabled          bool     `db:"enabled"`
	Cores            float64  `db:"cores"`
	MemoryMB         int64    `db:"memory_mb"`
	IncludeLabels    []string `db:"-"` // the adapter scans the text[] columns
	ExcludeLabels    []string `db:"-"`
	DockerExecConfig []byte   `db:"docker_exec_config"`
	RunConfig        []byte   `db:"run_config"`
	Port             int      `db:"port"`
	ReadinessPath    string   `db:"readiness_path"`
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
	// InternalAddress is the agent's internal_address ("" when unset;
	// see containerconfig.PublishAddress).
	InternalAddress string `db:"internal_address"`
}

// Address is where the agent publishes its sessions' ports and Greenroom
// reaches them (containerconfig.PublishAddress).
func (a Agent) Address() (string, error) {
	return containerconfig.PublishAddress(a.InternalAddress, a.DockerEndpoint)
}

// StagingConfig is the part of a staging config a staged session needs.
type StagingConfig struct {
	ID              string  `db:"id"`
	ExpirationHours float64 `db:"expiration_hours"`
}

// ZoneDomains are a zone's two domain settings.
type ZoneDomains struct {
	Name                string `db:"name"`
	AllowOriginDomain   string `db:"allow_origin_domain"`
	UpstreamAuthAddress string `db:"upstream_auth_address"`
}

// SessionUser is the user a session is made for, with what the user's
// effective group says to bring into the container.
type SessionUser struct {
	ID            string   `db:"id"`
	Name          string   `db:"username"`
	SSHPublicKeys []string `db:"-"` // the adapter scans the text[] column
	Attributes    []byte   `db:"attributes"`
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

// ServerTarget is a server of a pool to check for reachability before a
// placement.
type ServerTarget struct {
	ID      string `db:"id"`
	Name    string `db:"name"`
	Address string `db:"address"`
}
