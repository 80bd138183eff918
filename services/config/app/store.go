package app

import (
	"context"
	"errors"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// What the use cases need of the database, one interface per table
// (adapters.Store implements them in PostgreSQL). Reads that name a row
// fail with ErrNotFound when there is none; so do writes to a row that is
// gone.

// ErrNotFound means no row matched.
var ErrNotFound = errors.New("not found")

// ErrBadCursor means a list's ?cursor= is not one of its pages'
// (domain.Page): another list's, or made up.
var ErrBadCursor = errors.New("not a cursor of this list")

// Lock is the row lock a read takes on the row it returns, inside the
// caller's transaction.
type Lock int

const (
	// NoLock reads without locking.
	NoLock Lock = iota
	// ForShare keeps the row from changing until the transaction ends: for
	// rows whose attributes a write depends on (a zone's domains when a
	// staging config is created, a pool's type when an agent joins it).
	ForShare
	// ForUpdate is taken on a row about to be changed.
	ForUpdate
)

// Store is the config service's database.
type Store interface {
	// Tables reads and writes outside any transaction.
	Tables
	// InTx runs fn in one transaction: what it writes and enqueues commits
	// together or not at all. A write the database refuses for a rule the
	// use case did not check fails it with a *RefusedError.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// Snapshot runs the reads of fn in one read-only transaction that sees
	// the database as of its first statement, so that what they return
	// together (a pool and its members) is consistent.
	Snapshot(ctx context.Context, fn func(tables Tables) error) error
}

// Tx is one transaction of InTx.
type Tx interface {
	Tables
	// Enqueue writes ev into the outbox, published once the transaction
	// commits.
	Enqueue(ctx context.Context, subject string, ev events.Event, requestID string) error
	// KeepSessionAlive moves the keepalive deadline of the running session
	// with id to at plus its keepalive expiration (libs/sessions.Keepalive:
	// sessions.ErrNotFound, sessions.ErrStale).
	KeepSessionAlive(ctx context.Context, id string, at time.Time) (sessions.Session, error)
}

// Tables are the tables the config service reads and writes.
type Tables interface {
	Zones
	Pools
	Agents
	Servers
	Workspaces
	Groups
	Users
	StagingConfigs
	WebFilterPolicies
	Sessions
	Violations
	SignIns
	APIKeys
	VMProviders
	DNSProviders
	AutoscaleConfigs
}

// VMProviders are the VM providers autoscale configs make machines with.
type VMProviders interface {
	GetVMProvider(ctx context.Context, name string, lock Lock) (domain.Provider, error)
	ListVMProviders(ctx context.Context, p domain.Page) (domain.Paged[domain.Provider], error)
	InsertVMProvider(ctx context.Context, p domain.Provider) (domain.Provider, error)
	UpdateVMProvider(ctx context.Context, p domain.Provider) (domain.Provider, error)
	DeleteVMProvider(ctx context.Context, id string) error
	// CountVMProviderAgents counts the agents whose machines the provider
	// with id made and has not deleted.
	CountVMProviderAgents(ctx context.Context, id string) (int, error)
}

// DNSProviders are the DNS providers autoscale configs register agents
// with.
type DNSProviders interface {
	GetDNSProvider(ctx context.Context, name string, lock Lock) (domain.Provider, error)
	ListDNSProviders(ctx context.Context, p domain.Page) (domain.Paged[domain.Provider], error)
	InsertDNSProvider(ctx context.Context, p domain.Provider) (domain.Provider, error)
	UpdateDNSProvider(ctx context.Context, p domain.Provider) (domain.Provider, error)
	DeleteDNSProvider(ctx context.Context, id string) error
	// CountDNSProviderAgents counts the agents, not deleted, of the
	// autoscale configs that use the provider with id: their records are
	// its.
	CountDNSProviderAgents(ctx context.Context, id string) (int, error)
}

// AutoscaleConfigs are the pools' autoscale configs.
type AutoscaleConfigs interface {
	GetAutoscaleConfig(ctx context.Context, name string, lock Lock) (domain.AutoscaleConfig, error)
	ListAutoscaleConfigs(ctx context.Context, p domain.Page) (domain.Paged[domain.AutoscaleConfig], error)
	InsertAutoscaleConfig(ctx context.Context, c domain.AutoscaleConfig) (domain.AutoscaleConfig, error)
	UpdateAutoscaleConfig(ctx context.Context, c domain.AutoscaleConfig) (domain.AutoscaleConfig, error)
	DeleteAutoscaleConfig(ctx context.Context, id string) error
}

// Zones are the deployment zones.
type Zones interface {
	GetZone(ctx context.Context, name string, lock Lock) (domain.Zone, error)
	ListZones(ctx context.Context, p domain.Page) (domain.Paged[domain.Zone], error)
	InsertZone(ctx context.Context, z domain.Zone) (domain.Zone, error)
	UpdateZone(ctx context.Context, z domain.Zone) (domain.Zone, error)
	// DeleteZone deletes the zone with id (and what is left of its deleted
	// staging configs).
	DeleteZone(ctx context.Context, id string) error
}

// Pools are the pools of agents and of servers.
type Pools interface {
	GetPool(ctx context.Context, name string, lock Lock) (domain.Pool, error)
	ListPools(ctx context.Context, p domain.Page) (domain.Paged[domain.Pool], error)
	InsertPool(ctx context.Context, p domain.Pool) (domain.Pool, error)
	UpdatePool(ctx context.Context, p domain.Pool) (domain.Pool, error)
	// CountPoolReferrers counts the agents, servers and workspaces in the
	// pool with id.
	CountPoolReferrers(ctx context.Context, id string) (int, error)
	DeletePool(ctx context.Context, id string) error
}

// Agents are the Docker agents.
type Agents interface {
	GetAgent(ctx context.Context, name string, lock Lock) (domain.Agent, error)
	ListAgents(ctx context.Context, p domain.Page) (domain.Paged[domain.Agent], error)
	ListAgentsInPools(ctx context.Context, poolIDs []string) ([]domain.Agent, error)
	InsertAgent(ctx context.Context, a domain.Agent) (domain.Agent, error)
	UpdateAgent(ctx context.Context, a domain.Agent) (domain.Agent, error)
	DeleteAgent(ctx context.Context, id string) error
}

// Servers are the fixed servers.
type Servers interface {
	GetServer(ctx context.Context, name string, lock Lock) (domain.Server, error)
	ListServers(ctx context.Context, p domain.Page) (domain.Paged[domain.Server], error)
	ListServersInPools(ctx context.Context, poolIDs []string) ([]domain.Server, error)
	// CountAssignedServers counts the servers of a pool assigned to a user.
	CountAssignedServers(ctx context.Context, poolID string) (int, error)
	InsertServer(ctx context.Context, s domain.Server) (domain.Server, error)
	UpdateServer(ctx context.Context, s domain.Server) (domain.Server, error)
	DeleteServer(ctx context.Context, id string) error
}

// Workspaces are the workspaces.
type Workspaces interface {
	GetWorkspace(ctx context.Context, name string, lock Lock) (domain.Workspace, error)
	ListWorkspaces(ctx context.Context, p domain.Page) (domain.Paged[domain.Workspace], error)
	ListWorkspacesOfServerPools(ctx context.Context, poolIDs []string) ([]domain.Workspace, error)
	ListWorkspacesOfWebFilterPolicy(ctx context.Context, id string) ([]domain.Workspace, error)
	InsertWorkspace(ctx context.Context, w domain.Workspace) (domain.Workspace, error)
	UpdateWorkspace(ctx context.Context, w domain.Workspace) (domain.Workspace, error)
	// DeleteWorkspace deletes the workspace with id and its ended sessions.
	DeleteWorkspace(ctx context.Context, id string) error
}

// Groups are the user groups.
type Groups interface {
	GetGroup(ctx context.Context, name string, lock Lock) (domain.Group, error)
	ListGroups(ctx context.Context, p domain.Page) (domain.Paged[domain.Group], error)
	ListGroupsOfWebFilterPolicy(ctx context.Context, id string) ([]domain.Group, error)
	InsertGroup(ctx context.Context, g domain.Group) (domain.Group, error)
	UpdateGroup(ctx context.Context, g domain.Group) (domain.Group, error)
	DeleteGroup(ctx context.Context, id string) error
}

// Users are the users and their group memberships.
type Users interface {
	GetUser(ctx context.Context, username string, lock Lock) (domain.User, error)
	GetUserByID(ctx context.Context, id string) (domain.User, error)
	ListUsers(ctx context.Context, p domain.Page) (domain.Paged[domain.User], error)
	InsertUser(ctx context.Context, u domain.User) error
	UpdateUser(ctx context.Context, u domain.User) error
	// SetUserPassword stores the password hash of the user with id; nil
	// removes it, and the user can no longer sign in.
	SetUserPassword(ctx context.Context, id string, hash *string) error
	// SetUserGroups makes the groups named groups the user's only groups;
	// names of no group come back as missing, and nothing changes.
	SetUserGroups(ctx context.Context, userID string, groups []string) (missing []string, err error)
	DeleteUser(ctx context.Context, id string) error
}

// StagingConfigs are the live (not deleted) staging configs.
type StagingConfigs interface {
	GetStagingConfig(ctx context.Context, id string, lock Lock) (domain.StagingConfig, error)
	ListStagingConfigs(ctx context.Context, p domain.Page) (domain.Paged[domain.StagingConfig], error)
	CountLiveStagingConfigsInZone(ctx context.Context, zoneID string) (int, error)
	CountLiveStagingConfigsOfWorkspace(ctx context.Context, workspaceID string) (int, error)
	InsertStagingConfig(ctx context.Context, sc domain.StagingConfig) (domain.StagingConfig, error)
	UpdateStagingConfig(ctx context.Context, sc domain.StagingConfig) (domain.StagingConfig, error)
	SoftDeleteStagingConfig(ctx context.Context, id string) error
}

// WebFilterPolicies are the web filter policies.
type WebFilterPolicies interface {
	GetWebFilterPolicy(ctx context.Context, name string, lock Lock) (domain.WebFilterPolicy, error)
	ListWebFilterPolicies(ctx context.Context, p domain.Page) (domain.Paged[domain.WebFilterPolicy], error)
	InsertWebFilterPolicy(ctx context.Context, p domain.WebFilterPolicy) (domain.WebFilterPolicy, error)
	UpdateWebFilterPolicy(ctx context.Context, p domain.WebFilterPolicy) (domain.WebFilterPolicy, error)
	DeleteWebFilterPolicy(ctx context.Context, id string) error
}

// Sessions are the sessions, read only: libs/sessions owns their changes.
type Sessions interface {
	GetSession(ctx context.Context, id string) (domain.Session, error)
	GetSessionByRequestID(ctx context.Context, requestID string) (domain.Session, error)
	ListSessions(ctx context.Context, f domain.SessionFilter, p domain.Page) (domain.Paged[domain.Session], error)
	// ResolveRequest resolves a session request's names in one round trip.
	ResolveRequest(ctx context.Context, user, workspace, zone, requestID string) (RequestRefs, error)
	// CountLiveSessionsOfWorkspace and CountLiveSessionsOnServer count the
	// sessions that are not destroyed or failed.
	CountLiveSessionsOfWorkspace(ctx context.Context, workspaceID string) (int, error)
	CountLiveSessionsOnServer(ctx context.Context, serverID string) (int, error)
}

// Violations are the incompatible settings the assigner records.
type Violations interface {
	ListViolations(ctx context.Context, f domain.ViolationFilter, p domain.Page) (domain.Paged[domain.Violation], error)
}

// SignIns are the users' sign-ins, read only: libs/signin owns them.
type SignIns interface {
	// SignedInUser returns the user whose live sign-in token is token;
	// ErrNotSignedIn when there is no such sign-in, or it expired.
	SignedInUser(ctx context.Context, token string) (SignedInUser, error)
}

// APIKeys are the API keys of internal services. A key is never changed,
// only created and deleted; its secret is known here only by its hash.
type APIKeys interface {
	GetAPIKey(ctx context.Context, name string) (domain.APIKey, error)
	// GetAPIKeyBySecretHash loads the key whose secret has this hash
	// (domain.HashAPIKeySecret), expired or not.
	GetAPIKeyBySecretHash(ctx context.Context, secretHash []byte) (domain.APIKey, error)
	ListAPIKeys(ctx context.Context, p domain.Page) (domain.Paged[domain.APIKey], error)
	InsertAPIKey(ctx context.Context, k domain.APIKey, secretHash []byte) (domain.APIKey, error)
	// RecordAPIKeyUse sets the key's last_used_at to now; a key deleted
	// meanwhile is no error.
	RecordAPIKeyUse(ctx context.Context, id string) error
	DeleteAPIKey(ctx context.Context, id string) error
}

// ErrNotSignedIn means a sign-in token is unknown or expired.
var ErrNotSignedIn = errors.New("not signed in (unknown or expired sign-in)")

// SignedInUser is whom a sign-in token belongs to.
type SignedInUser struct {
	ID   string
	Name string
}

// RequestRefs are the user, workspace and zone a session request names,
// resolved by name (nil: no such one), and whether a session already
// exists for its request_id.
type RequestRefs struct {
	UserID      *string `db:"user_id"`
	WorkspaceID *string `db:"workspace_id"`
	Zone        struct {
		ID                   *string `db:"id"`
		SearchAlternateZones bool    `db:"search_alternate_zones"`
	} `db:"zone"`
	Existing bool `db:"existing"`
}

// Refusal is the kind of rule a database refused a write for.
type Refusal int

// Refusals of RefusedError.
const (
	// RefusedDuplicate: a unique name or key is taken.
	RefusedDuplicate Refusal = iota + 1
	// RefusedReferenced: rows of RefusedError.Table still refer to what
	// was to be deleted or changed.
	RefusedReferenced
	// RefusedValue: a value out of range, or a CHECK the validation did not
	// foresee; RefusedError.Message is the database's.
	RefusedValue
)

// RefusedError is a write the database refused; it reads as the
// database's own error, which it wraps.
type RefusedError struct {
	Refusal Refusal
	// Table, for RefusedReferenced, is the table of the referring rows.
	Table string
	// Message, for RefusedValue, says which value and why.
	Message string
	Err     error
}

func (e *RefusedError) Error() string { return e.Err.Error() }

func (e *RefusedError) Unwrap() error { return e.Err }
