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
	Reason          string `json:"reason"`
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

// ConfigChanged announces a change made through the config service.
type ConfigChanged struct {
	Kind string `json:"kind"`
	Op   string `json:"op"`
	ID   string `json:"id"`
	Name string `json:"name"`
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
