package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/assigner/domain"
)

// Store serves each request in one transaction (adapters.Store, in
// PostgreSQL).
type Store interface {
	// InTx runs fn in one transaction: whatever fn claims, creates and
	// emits commits together or not at all. It fails with
	// ErrRequestAlreadyServed when a concurrent transaction made a session
	// for the same request_id first.
	InTx(ctx context.Context, fn func(ctx context.Context, tx ClaimTx) error) error
}

// ClaimTx is one request's unit of work: what RequestSession reads and
// writes inside its transaction.
type ClaimTx interface {
	// Load reads what the rules need to plan req. It fails with an
	// *UnknownReferenceError when req names no such user, workspace or
	// zone; ExistingSessionID is set whatever the error.
	Load(ctx context.Context, req events.SessionRequested) (RequestContext, error)
	// Session loads the session already made for a request.
	Session(ctx context.Context, requestID string) (sessions.Session, error)
	// Claim takes a staged session of c's staging config for its user;
	// sessions.ErrNoneStaged when none is staged.
	Claim(ctx context.Context, c sessions.Claim) (sessions.Session, error)
	// CreateOnDemand inserts the session row an on-demand container will fill.
	CreateOnDemand(ctx context.Context, n sessions.New) (sessions.Session, error)
	// RecordViolation stores one incompatible setting of a request.
	RecordViolation(ctx context.Context, id string, v events.StagingViolation, userID, workspaceID string) error
	// Emit writes an event to the outbox in this transaction.
	Emit(ctx context.Context, subject, eventType string, data any, requestID string) error
	// EmitWithID writes an event with a deterministic id, so that
	// announcing the same fact again is de-duplicated by the stream.
	EmitWithID(ctx context.Context, id, subject, eventType string, data any, requestID string) error
	// Outcome returns the ready announcement of a session.
	Outcome(ctx context.Context, sessionID string) (events.SessionReady, error)
}

// ErrRequestAlreadyServed says a concurrent delivery of the same request
// made its session first.
var ErrRequestAlreadyServed = errors.New("a session already exists for the request_id")

// UnknownReferenceError says a request named something that does not exist.
type UnknownReferenceError struct {
	Field string
	Name  string
}

func (e *UnknownReferenceError) Error() string {
	return fmt.Sprintf("unknown %s %q", e.Field, e.Name)
}

// RequestContext is what the rules need to plan one request.
type RequestContext struct {
	// ExistingSessionID is the session already made for the request's
	// request_id, if any.
	ExistingSessionID string
	UserID            string
	Workspace         domain.Workspace
	Cores             float64
	MemoryMB          int
	Zone              domain.Zone
	Zones             []domain.Zone
	Groups            []domain.Group
	Configs           []domain.StagingConfig
}

// ZoneName returns the name of a zone of the context.
func (rc RequestContext) ZoneName(id string) string {
	for _, z := range rc.Zones {
		if z.ID == id {
			return z.Name
		}
	}
	return ""
}
