package domain

import (
	"fmt"
	"strings"
	"time"
)

// Session is a row of the sessions table as operators see it: names, not
// ids. A staged session not yet assigned has no user and no request. A
// session runs in a container on an Agent, or — for a workspace with a
// server pool — is assigned to a fixed Server; the other one is nil.
// OnDemandReason says why an on-demand session was not served staged
// (no_staging_config, none_staged, permissions_differ:<field>,
// incompatible:<setting>); it is nil for a staged one. ExpiresAt is the
// session's own deadline: for a staged one its expiration, for a running
// one the earlier of its time limit and keepalive deadline. UpstreamURL,
// the container's internal address, is told only to whoever checks a
// user's access to the session (session-auth), never listed.
type Session struct {
	ID              string     `db:"id" json:"id"`
	RequestID       *string    `db:"request_id" json:"request_id"`
	UserID          *string    `db:"user_id" json:"-"`
	User            *string    `db:"username" json:"user"`
	WorkspaceID     string     `db:"workspace_id" json:"-"`
	Workspace       string     `db:"workspace" json:"workspace"`
	ZoneID          string     `db:"zone_id" json:"-"`
	Zone            string     `db:"zone" json:"zone"`
	Agent           *string    `db:"agent" json:"agent"`
	Server          *string    `db:"server" json:"server"`
	ContainerID     string     `db:"container_id" json:"container_id"`
	URL             string     `db:"url" json:"url"`
	UpstreamURL     string     `db:"upstream_url" json:"-"`
	Origin          string     `db:"origin" json:"origin"`
	Status          string     `db:"status" json:"status"`
	StagingConfigID *string    `db:"staging_config_id" json:"staging_config_id"`
	FailureReason   string     `db:"failure_reason" json:"failure_reason"`
	OnDemandReason  *string    `db:"on_demand_reason" json:"on_demand_reason"`
	CreatedAt       time.Time  `db:"created_at" json:"created_at"`
	StagedAt        *time.Time `db:"staged_at" json:"staged_at"`
	AssignedAt      *time.Time `db:"assigned_at" json:"assigned_at"`
	ExpiresAt       *time.Time `db:"expires_at" json:"expires_at"`
	DestroyedAt     *time.Time `db:"destroyed_at" json:"destroyed_at"`
}

// SessionRequest is the body of POST /api/v1/sessions: what
// greenroom.session.requested carries.
type SessionRequest struct {
	User      Optional[string] `json:"user"`
	Workspace Optional[string] `json:"workspace"`
	Zone      Optional[string] `json:"zone"`
	RequestID Optional[string] `json:"request_id"`
}

// RequestIDMaxLength bounds request ids (and Idempotency-Key headers).
const RequestIDMaxLength = 200

// IdempotencyKeyField names the header in field errors.
const IdempotencyKeyField = "Idempotency-Key"

// Validate lists the problems of the body and of the Idempotency-Key header
// (empty when absent), which must equal request_id when both are given.
func (in SessionRequest) Validate(idempotencyKey string) FieldErrors {
	var errs FieldErrors
	checkNonEmpty(&errs, "user", in.User, required)
	checkNonEmpty(&errs, "workspace", in.Workspace, required)
	checkNonEmpty(&errs, "zone", in.Zone, required)
	checkLength(&errs, "request_id", in.RequestID, optional, 1, RequestIDMaxLength)
	if len(idempotencyKey) > RequestIDMaxLength {
		errs.Add(IdempotencyKeyField, "must be at most %d characters long", RequestIDMaxLength)
	}
	if in.RequestID.Has() && idempotencyKey != "" && in.RequestID.Value != idempotencyKey {
		errs.Add(IdempotencyKeyField, "differs from request_id %q; give one of them, or both equal", in.RequestID.Value)
	}
	return errs
}

// RequestIDOf returns the request's id: request_id, else the
// Idempotency-Key header, else "" (the caller makes one up).
func (in SessionRequest) RequestIDOf(idempotencyKey string) string {
	if in.RequestID.Has() {
		return in.RequestID.Value
	}
	return idempotencyKey
}

// Session request waits (openapi.yaml createSession `wait`).
const (
	SessionWaitDefault = 60 * time.Second
	SessionWaitMax     = 300 * time.Second
)

// ParseWait reads the `wait` query parameter: a Go duration from 0 (answer
// at once) to SessionWaitMax, SessionWaitDefault when empty.
func ParseWait(s string) (time.Duration, error) {
	if s == "" {
		return SessionWaitDefault, nil
	}
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("must be a duration from 0 to %s, such as 60s or 500ms", SessionWaitMax)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d > SessionWaitMax {
		return 0, fmt.Errorf("must be a duration from 0 to %s, such as 60s or 500ms", SessionWaitMax)
	}
	return d, nil
}

// RequestMismatch names the first field in which a new request differs from
// the session an earlier request with the same request_id made, or "" when
// they are the same request. The zone only counts when the requested zone
// does not search alternate zones: otherwise the session may rightly be in
// another one.
func RequestMismatch(s Session, userID, workspaceID string, zone Zone) string {
	switch {
	case s.UserID == nil || *s.UserID != userID:
		return "user"
	case s.WorkspaceID != workspaceID:
		return "workspace"
	case s.ZoneID != zone.ID && !zone.SearchAlternateZones:
		return "zone"
	}
	return ""
}

// Session filters (GET /api/v1/sessions).
var (
	SessionStatuses = []string{"provisioning", "staged", "assigning", "running", "destroying", "destroyed", "failed"}
	SessionOrigins  = []string{"staged", "on_demand"}
)

// SessionFilter selects sessions; empty fields select everything.
type SessionFilter struct {
	User          string // username
	Status        string
	StagingConfig string // id
	Origin        string
	// Ended, when set, selects only the sessions that ended (destroyed or
	// failed) or only those that did not.
	Ended *bool
}

// Validate lists the filter's problems, by query parameter.
func (f SessionFilter) Validate() FieldErrors {
	var errs FieldErrors
	if f.Status != "" {
		checkEnum(&errs, "status", Some(f.Status), optional, SessionStatuses...)
	}
	if f.StagingConfig != "" && !IsUUID(f.StagingConfig) {
		errs.Add("staging_config", "must be a UUID")
	}
	if f.Origin != "" {
		checkEnum(&errs, "origin", Some(f.Origin), optional, SessionOrigins...)
	}
	return errs
}

// SessionAccepted answers a session request that is not served yet.
type SessionAccepted struct {
	RequestID string `json:"request_id"`
	// Status is "requested" while no session exists for the request, else
	// the session's status.
	Status  string   `json:"status"`
	Session *Session `json:"session,omitempty"`
}

// SessionRequested is SessionAccepted's status before a session exists.
const SessionRequested = "requested"

// Violation is an incompatible setting that forced an on-demand session
// instead of a staged one.
type Violation struct {
	ID        string    `db:"id" json:"id"`
	RequestID string    `db:"request_id" json:"request_id"`
	User      string    `db:"username" json:"user"`
	Workspace string    `db:"workspace" json:"workspace"`
	Setting   string    `db:"setting" json:"setting"`
	SessionID *string   `db:"session_id" json:"session_id"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
}

// ViolationFilter selects violations; empty fields select everything.
type ViolationFilter struct {
	User      string // username
	Workspace string // workspace name
}
