package events

import "strings"

// Payloads of each event type. Every event about a request carries its
// request_id. Field names are part of the public contract (schemas/events).

// Permissions are the seven settings a staged container is started with; a
// user is only given a staged session whose permissions equal theirs.
type Permissions struct {
	AllowAudio         bool `json:"allow_audio" db:"allow_audio"`
	AllowClipboardDown bool `json:"allow_clipboard_down" db:"allow_clipboard_down"`
	AllowClipboardUp   bool `json:"allow_clipboard_up" db:"allow_clipboard_up"`
	AllowDownloads     bool `json:"allow_downloads" db:"allow_downloads"`
	AllowMicrophone    bool `json:"allow_microphone" db:"allow_microphone"`
	AllowUploads       bool `json:"allow_uploads" db:"allow_uploads"`
	AllowGamepad       bool `json:"allow_gamepad" db:"allow_gamepad"`
}

// SessionRequested asks for a session: published by internal services, the
// CLI and the config service's POST /api/v1/sessions.
type SessionRequested struct {
	RequestID string `json:"request_id"`
	User      string `json:"user"`
	Workspace string `json:"workspace"`
	Zone      string `json:"zone"`
	// Requester is not in the payload: it is read off the subject the
	// request came on (RequesterOf), which NATS permissions vouch for.
	Requester string `json:"-"`
}

// SessionAssigned says a staged session was claimed for a user; the
// provisioner runs the workspace's assign exec and then reports ready.
type SessionAssigned struct {
	RequestID       string `json:"request_id"`
	SessionID       string `json:"session_id"`
	User            string `json:"user"`
	UserID          string `json:"user_id"`
	Workspace       string `json:"workspace"`
	Zone            string `json:"zone"`
	StagingConfigID string `json:"staging_config_id"`
	// RequestedZone is the zone the request named; Zone differs from it
	// when the session was claimed in an alternate zone.
	RequestedZone string `json:"requested_zone,omitempty"`
	// ZoneSearchStep is the step of the request's zone search that served
	// it: 1 for the requested zone, n for the n-th zone of the search
	// order. Both are omitted only by assigners older than them.
	ZoneSearchStep int `json:"zone_search_step,omitempty"`
}

// ProvisionRequested asks the provisioner to create a container for a
// session row that is already in `provisioning`. Zones is the order in which
// zones may host it: the first with capacity wins.
type ProvisionRequested struct {
	RequestID       string   `json:"request_id,omitempty"`
	SessionID       string   `json:"session_id"`
	Workspace       string   `json:"workspace"`
	Zones           []string `json:"zones"`
	Origin          string   `json:"origin"`
	StagingConfigID string   `json:"staging_config_id,omitempty"`
	// OnDemandReason says why an on-demand session was not served staged.
	OnDemandReason string `json:"on_demand_reason,omitempty"`
	// RequestedZone is the zone an on-demand session's request named
	// (Zones starts with it); absent for staged sessions.
	RequestedZone string `json:"requested_zone,omitempty"`
}

// Reasons an on-demand session was not served from a staged pool (its
// on_demand_reason): no staging config of the workspace in the zones
// searched, none staged with the user's permissions at that moment, the
// user's permissions differ from every staging config's (the first field
// that differs follows the colon), or an incompatible setting (named after
// the colon; rule 4).
const (
	OnDemandNoStagingConfig   = "no_staging_config"
	OnDemandNoneStaged        = "none_staged"
	OnDemandPermissionsDiffer = "permissions_differ"
	OnDemandIncompatible      = "incompatible"
	// OnDemandServerPool: the workspace's sessions go to the fixed
	// servers of its server pool, which are never staged.
	OnDemandServerPool = "server_pool"
)

// SessionStaged says a staged container answers and waits for a user.
type SessionStaged struct {
	SessionID       string `json:"session_id"`
	StagingConfigID string `json:"staging_config_id"`
	Workspace       string `json:"workspace"`
	Zone            string `json:"zone"`
	Agent           string `json:"agent"`
	ContainerID     string `json:"container_id"`
}

// SessionReady is the successful outcome of a request.
type SessionReady struct {
	RequestID string `json:"request_id"`
	SessionID string `json:"session_id"`
	User      string `json:"user"`
	Workspace string `json:"workspace"`
	Zone      string `json:"zone"`
	Agent     string `json:"agent"`
	// Server is the fixed server of a server pool the session was assigned
	// to (then Agent and ContainerID are empty), omitted otherwise.
	Server      string `json:"server,omitempty"`
	ContainerID string `json:"container_id"`
	URL         string `json:"url"`
	Origin      string `json:"origin"`
	// RequestedZone is the zone the request named; Zone differs from it
	// when the request was served in an alternate zone.
	RequestedZone string `json:"requested_zone,omitempty"`
	// ZoneSearchStep is the step of the request's zone search that served
	// it: 1 for the requested zone, n for the n-th zone of the search
	// order. Omitted when unknown: a staged session claimed by an
	// assigner older than it, or an outcome announced again.
	ZoneSearchStep int `json:"zone_search_step,omitempty"`
}

// Failure reasons carried by SessionFailed.
const (
	ReasonNoCapacity          = "no_capacity"
	ReasonUnknownReference    = "unknown_reference"
	ReasonWorkspaceDisabled   = "workspace_disabled"
	ReasonProvisioningFailed  = "provisioning_failed"
	ReasonProvisioningTimeout = "provisioning_timeout"
	ReasonAssignFailed        = "assign_failed"
	ReasonContainerGone       = "container_gone"
	// ReasonDestroyed: the session was destroyed (say, by an operator's
	// DELETE) before it was ready, or is gone by the time its request is
	// repeated.
	ReasonDestroyed = "destroyed"
	// ReasonRequestConflict: the request_id was already used for another
	// user or workspace.
	ReasonRequestConflict = "request_conflict"
	// ReasonInvalidRequest: the request's request_id could be read but
	// the request is otherwise invalid (a missing or mistyped field, an
	// envelope attribute that is wrong); the detail names the field.
	ReasonInvalidRequest = "invalid_request"
	// ReasonExpired: the request was older than the assigner's maximum
	// request age (GREENROOM_REQUEST_MAX_AGE) when it was read, say because a
	// recreated consumer replayed it; it is never served.
	ReasonExpired = "expired"
)

// FailureReasons lists every Reason* constant.
var FailureReasons = []string{ReasonNoCapacity, ReasonUnknownReference, ReasonWorkspaceDisabled,
	ReasonProvisioningFailed, ReasonProvisioningTimeout, ReasonAssignFailed, ReasonContainerGone,
	ReasonRequestConflict, ReasonDestroyed, ReasonInvalidRequest, ReasonExpired}

// RecordedFailure is how a failure is stored in sessions.failure_reason:
// "<reason>: <detail>", so the machine-readable reason survives.
func RecordedFailure(reason, detail string) string {
	if detail == "" {
		return reason
	}
	return reason + ": " + detail
}

// ParseRecordedFailure splits a stored failure_reason back into its reason
// and detail; text without a known reason is provisioning_failed.
func ParseRecordedFailure(s string) (reason, detail string) {
	for _, r := range FailureReasons {
		if s == r {
			return r, ""
		}
		if strings.HasPrefix(s, r+": ") {
			return r, s[len(r)+2:]
		}
	}
	return ReasonProvisioningFailed, s
}

// SessionFailed is the unsuccessful outcome of a request, or the end of a
// session whose container failed.
type SessionFailed struct {
	RequestID string `json:"request_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	Reason    string `json:"reason"`
	Detail    string `json:"detail"`
}

// SessionDestroy asks the provisioner to destroy a session (API DELETE).
type SessionDestroy struct {
	SessionID string `json:"session_id"`
	Reason    string `json:"reason"`
}

// SessionDestroyed says a session's container is gone.
type SessionDestroyed struct {
	SessionID       string `json:"session_id"`
	RequestID       string `json:"request_id,omitempty"`
	StagingConfigID string `json:"staging_config_id,omitempty"`
	// Reason is the destroy's own reason, as it was given (the reason of
	// greenroom.session.destroy or greenroom.session.expired).
	Reason string `json:"reason"`
	// Cause is why the session ended, one of DestroyCauses: DestroyCause
	// of Reason, or DestroyCauseOfFailed for a failed session whose
	// container was removed.
	Cause string `json:"cause,omitempty"`
}

// Expiry reasons carried by SessionExpired: which timer fired.
const (
	ExpiredStaged       = "staged_expired"
	ExpiredProvisioning = "provisioning_timeout"
	// ExpiredAssigning: a claimed staged session stayed in assigning past
	// its timeout (its assign command never reported an outcome).
	ExpiredAssigning = "assign_timeout"
	// ExpiredTimeLimit: a running session reached its group's
	// session_time_limit.
	ExpiredTimeLimit = "time_limit"
	// ExpiredKeepalive: a running session had no keepalive within its
	// group's keepalive_expiration.
	ExpiredKeepalive = "keepalive"
)

// ExpiryReasons lists every Expired* constant.
var ExpiryReasons = []string{ExpiredStaged, ExpiredProvisioning, ExpiredAssigning, ExpiredTimeLimit, ExpiredKeepalive}

// SessionKeepalive says a running session is in use (a client called POST
// /api/v1/sessions/{id}/keepalive, or an internal service — the gateway,
// once there is one — saw its traffic): its
// keepalive deadline moves to the event's time plus the session's
// keepalive_expiration. Consumed by the expiry service; replaying it never
// shortens a deadline.
type SessionKeepalive struct {
	SessionID string `json:"session_id"`
	RequestID string `json:"request_id,omitempty"`
}

// SessionExpired is fired by the expiry service; the provisioner removes the
// container (and the staging pool is refilled).
type SessionExpired struct {
	SessionID       string `json:"session_id"`
	RequestID       string `json:"request_id,omitempty"`
	StagingConfigID string `json:"staging_config_id,omitempty"`
	Reason          string `json:"reason"`
}

// StagingViolation records an incompatible setting that forced on-demand.
type StagingViolation struct {
	RequestID string `json:"request_id"`
	User      string `json:"user"`
	Workspace string `json:"workspace"`
	Zone      string `json:"zone"`
	Setting   string `json:"setting"`
	SessionID string `json:"session_id,omitempty"`
}

// StagingShortfall says a staging config cannot reach its desired size.
type StagingShortfall struct {
	StagingConfigID string `json:"staging_config_id"`
	Zone            string `json:"zone"`
	Workspace       string `json:"workspace"`
	Desired         int    `json:"desired"`
	Current         int    `json:"current"`
	Reason          string `json:"reason"`
	Permanent       bool   `json:"permanent"`
}

// ContainerCreated says the provisioner created a container for a
// session and recorded it, in the transaction that recorded it: one event
// per container, whatever the redeliveries.
type ContainerCreated struct {
	SessionID       string `json:"session_id"`
	RequestID       string `json:"request_id,omitempty"`
	StagingConfigID string `json:"staging_config_id,omitempty"`
	Agent           string `json:"agent"`
	Zone            string `json:"zone"`
	ContainerID     string `json:"container_id"`
	Image           string `json:"image"`
}

// ContainerRemoved says a container was removed that no session's own
// destroy removed: the orphan collector's (Cause CauseOrphan), whose
// session has no row or had already ended.
type ContainerRemoved struct {
	ContainerID string `json:"container_id"`
	Agent       string `json:"agent"`
	SessionID   string `json:"session_id,omitempty"`
	Cause       string `json:"cause"`
}

// An autoscaled agent's lifecycles (AgentLifecycle.From and To), as the
// agents table's lifecycle column names them: provisioning (its row exists
// from the decision to add it on, its machine is being made), active (it
// takes sessions), draining (it takes no new session), deleting (its
// machine and DNS record are being deleted), deleted (its row is kept as
// its sessions' history).
const (
	AgentProvisioning = "provisioning"
	AgentActive       = "active"
	AgentDraining     = "draining"
	AgentDeleting     = "deleting"
	AgentDeleted      = "deleted"
)

// AgentLifecycles lists every Agent* lifecycle, in the order of an agent's
// life.
var AgentLifecycles = []string{AgentProvisioning, AgentActive, AgentDraining, AgentDeleting, AgentDeleted}

// AgentLifecycle says an autoscaled Docker agent moved from one lifecycle
// to the next: sent by the provisioner in the transaction that changes the
// agent's row, so that replaying the log gives every agent a pool had, when
// it was added and removed, and why. The steps are none → provisioning (a
// scale-up decision), provisioning → active (its engine answers and holds
// the workspaces' images), provisioning → deleting (it did not come up in
// time), active → draining and draining → active (a decision), draining →
// deleting (a decision) and deleting → deleted (its machine and DNS record
// are gone).
type AgentLifecycle struct {
	// Agent and AgentID are the agent's name and the id of its row.
	Agent   string `json:"agent"`
	AgentID string `json:"agent_id"`
	// AutoscaleConfig is the name of the autoscale config that made it.
	AutoscaleConfig string `json:"autoscale_config,omitempty"`
	// From is the lifecycle it left; empty (omitted) for a new agent,
	// which had none.
	From string `json:"from,omitempty"`
	// To is the lifecycle it entered.
	To string `json:"to"`
	// Reason is why: the autoscale decision's reason with its figures, or
	// what failed.
	Reason string `json:"reason"`
	// MachineID (the VM provider's id of its machine) and Address (the
	// machine's IP address, the agent's internal_address) are set once the
	// machine exists.
	MachineID string `json:"machine_id,omitempty"`
	Address   string `json:"address,omitempty"`
}

// How a claimed staged session's assign step ran (AssignRan.Method).
const (
	// AssignMethodHook: an HTTP POST to the workspace's assign_hook in
	// the container.
	AssignMethodHook = "assign_hook"
	// AssignMethodExec: the docker_exec_config assign command, run in the
	// container.
	AssignMethodExec = "docker_exec"
	// AssignMethodNone: the workspace has neither; the step did nothing.
	AssignMethodNone = "none"
)

// AssignMethods lists every AssignMethod* constant.
var AssignMethods = []string{AssignMethodHook, AssignMethodExec, AssignMethodNone}

// AssignDetailMaxLength is the longest AssignRan.Detail the schema allows.
const AssignDetailMaxLength = 1000

// AssignRan says a claimed staged session's assign step finished: sent in
// the transaction that moves the session to running, or in the one that
// fails it.
type AssignRan struct {
	SessionID string `json:"session_id"`
	RequestID string `json:"request_id"`
	User      string `json:"user"`
	Method    string `json:"method"`
	OK        bool   `json:"ok"`
	// Detail is the first bytes of what the step answered (the command's
	// output, the hook's body) or why it failed; at most
	// AssignDetailMaxLength characters.
	Detail string `json:"detail,omitempty"`
	// DurationMS is how long the hook or the command took, in
	// milliseconds.
	DurationMS int `json:"duration_ms"`
}

// DeadLetter reports a message a consumer gave up on.
type DeadLetter struct {
	Consumer       string `json:"consumer"`
	StreamSequence uint64 `json:"stream_sequence"`
	Subject        string `json:"subject"`
	NumDelivered   uint64 `json:"num_delivered"`
	Reason         string `json:"reason"`
	Payload        string `json:"payload"`
}

// Subject returns the NATS subject an event is published on.
func Subject(eventType string, suffix string) string {
	if suffix == "" {
		return eventType
	}
	return eventType + "." + suffix
}
