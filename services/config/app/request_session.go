package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// SessionResult says how a session request was answered.
type SessionResult int

// Results of RequestSession.
const (
	// SessionExisted: an earlier request with this request_id made the
	// session, and nothing was requested again. It is running, has ended,
	// or came to an end while this request waited.
	SessionExisted SessionResult = iota + 1
	// SessionReady: the session was made (or claimed) and is running.
	SessionReady
	// SessionPending: the outcome is not known yet (wait 0, the wait
	// elapsed, or the service is stopping); Accepted says what is known.
	SessionPending
)

// SessionOutcome is the answer to a session request.
type SessionOutcome struct {
	Result   SessionResult
	Session  domain.Session         // when Existed or Ready
	Accepted domain.SessionAccepted // when Pending
}

// RequestSession asks for a session as greenroom.session.requested does, and
// waits up to wait for it to be running. The same request_id (or
// Idempotency-Key) never makes a second session: a repeated request gets
// the first one's session — at once if it is running or has ended, else
// once it is running — unless it was for another user, workspace or zone
// (409).
func (a *App) RequestSession(ctx context.Context, in domain.SessionRequest, idempotencyKey string, wait time.Duration) (SessionOutcome, error) {
	if errs := in.Validate(idempotencyKey); len(errs) > 0 {
		return SessionOutcome{}, invalid(errs)
	}
	requestID := in.RequestIDOf(idempotencyKey)
	if requestID == "" {
		requestID = uuid.NewString()
	}
	refs, err := a.store.ResolveRequest(ctx, in.User.Value, in.Workspace.Value, in.Zone.Value, requestID)
	if err != nil {
		return SessionOutcome{}, notAccepted(requestID, err)
	}
	for _, ref := range []struct {
		field string
		id    *string
	}{{"user", refs.UserID}, {"workspace", refs.WorkspaceID}, {"zone", refs.Zone.ID}} {
		if ref.id == nil {
			name := map[string]string{"user": in.User.Value, "workspace": in.Workspace.Value, "zone": in.Zone.Value}[ref.field]
			return SessionOutcome{}, refError(ErrNotFound, NotFound, ref.field, ref.field, name)
		}
	}
	if refs.Existing {
		existing, err := a.store.GetSessionByRequestID(ctx, requestID)
		if err != nil {
			return SessionOutcome{}, err
		}
		zone := domain.Zone{ID: *refs.Zone.ID, Name: in.Zone.Value, SearchAlternateZones: refs.Zone.SearchAlternateZones}
		if field := domain.RequestMismatch(existing, *refs.UserID, *refs.WorkspaceID, zone); field != "" {
			return SessionOutcome{}, fieldError(Conflict, field,
				"request_id %q was already used for a session of user %q, workspace %q in zone %q",
				requestID, deref(existing.User), existing.Workspace, existing.Zone)
		}
		return a.repeat(ctx, existing, wait)
	}

	req := client.Request{RequestID: requestID, User: in.User.Value, Workspace: in.Workspace.Value, Zone: in.Zone.Value}
	if wait == 0 {
		if _, _, err := a.requests.Publish(ctx, req); err != nil {
			return SessionOutcome{}, notAccepted(requestID, err)
		}
		return a.pending(ctx, requestID)
	}
	return a.await(ctx, requestID, wait, SessionReady, func(ctx context.Context) (client.Session, error) {
		return a.requests.Request(ctx, req)
	})
}

// repeat answers a request whose session an earlier request made: as it is
// when it is running or has ended, else by waiting for its outcome as the
// first request did.
func (a *App) repeat(ctx context.Context, s domain.Session, wait time.Duration) (SessionOutcome, error) {
	requestID := deref(s.RequestID)
	switch {
	case s.Status != string(sessions.Provisioning) && s.Status != string(sessions.Assigning):
		return SessionOutcome{Result: SessionExisted, Session: s}, nil
	case wait == 0:
		return a.pending(ctx, requestID)
	}
	// The outcome may be out already: look back over the session's life.
	lookback := time.Since(s.CreatedAt) + time.Minute
	return a.await(ctx, requestID, wait, SessionExisted, func(ctx context.Context) (client.Session, error) {
		return a.requests.Await(ctx, requestID, lookback)
	})
}

// await waits up to wait (or until the service stops) for what outcome
// reports, and answers it: the running session as result, 503 when no
// option had capacity, 502 for any other failure, and 202 when the outcome
// is not known in time.
func (a *App) await(ctx context.Context, requestID string, wait time.Duration, result SessionResult,
	outcome func(context.Context) (client.Session, error)) (SessionOutcome, error) {
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	defer context.AfterFunc(a.stopping, cancel)()
	a.waiting.Inc()
	ready, err := outcome(waitCtx)
	a.waiting.Dec()
	var failed *client.FailedError
	switch {
	case err == nil:
		s, err := a.store.GetSession(ctx, ready.SessionID)
		if err != nil {
			return SessionOutcome{}, err
		}
		return SessionOutcome{Result: result, Session: s}, nil
	case errors.As(err, &failed) && failed.Reason == events.ReasonNoCapacity:
		return SessionOutcome{}, &Error{Kind: NoCapacity, Detail: failed.Detail}
	case errors.As(err, &failed):
		return SessionOutcome{}, &Error{Kind: ProvisioningFailed, Detail: failed.Reason + ": " + failed.Detail}
	case ctx.Err() == nil && waitCtx.Err() != nil:
		return a.pending(ctx, requestID)
	case errors.Is(err, ErrNotAccepted):
		return SessionOutcome{}, notAccepted(requestID, err)
	}
	return SessionOutcome{}, err
}

// notAccepted answers a session request that failed before it was
// accepted: a refusal as it is, anything else (the database unreachable)
// as Unavailable, for nothing was sent and the same request may be sent
// again.
func notAccepted(requestID string, err error) error {
	var refusal *Error
	if errors.As(err, &refusal) {
		return err
	}
	return &Error{Kind: Unavailable, Detail: fmt.Sprintf(
		"session request %s was not accepted (%v); nothing was sent: send it again later, with the same request_id", requestID, err)}
}

// pending answers a request whose outcome is not known yet, with its
// session if one exists by now.
func (a *App) pending(ctx context.Context, requestID string) (SessionOutcome, error) {
	out := SessionOutcome{Result: SessionPending, Accepted: domain.SessionAccepted{RequestID: requestID, Status: domain.SessionRequested}}
	s, err := a.store.GetSessionByRequestID(ctx, requestID)
	switch {
	case err == nil:
		out.Accepted.Session, out.Accepted.Status = &s, s.Status
	case !errors.Is(err, ErrNotFound):
		return SessionOutcome{}, err
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
