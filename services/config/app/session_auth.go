package app

import (
	"context"
	"errors"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// AuthenticateSession serves GET /api/v1/session-auth, how a gateway (or
// a workspace image) checks a user: who holds the sign-in token and —
// when sessionID is not empty — whether that session is theirs to reach,
// and at which internal address. A missing, unknown or expired token is
// Unauthenticated; a session that is not live is NotFound, like an unknown
// one; a live session of another user, or a staged one of nobody yet, is
// Forbidden.
func (a *App) AuthenticateSession(ctx context.Context, token, sessionID string) (domain.SessionAuth, error) {
	if token == "" {
		return domain.SessionAuth{}, &Error{Kind: Unauthenticated, Detail: "not signed in: no sign-in token was sent"}
	}
	user, err := a.store.SignedInUser(ctx, token)
	if errors.Is(err, ErrNotSignedIn) {
		return domain.SessionAuth{}, &Error{Kind: Unauthenticated, Detail: err.Error()}
	}
	if err != nil {
		return domain.SessionAuth{}, err
	}
	out := domain.SessionAuth{User: user.Name, UserID: user.ID}
	if sessionID == "" {
		return out, nil
	}
	if err := checkUUID("session", sessionID); err != nil {
		return domain.SessionAuth{}, err
	}
	s, err := a.store.GetSession(ctx, sessionID)
	if err != nil {
		return domain.SessionAuth{}, notFoundOr(err, "no session with id %s", sessionID)
	}
	switch domain.AccessOf(s, user.ID) {
	case domain.SessionEnded:
		return domain.SessionAuth{}, &Error{Kind: NotFound, Detail: "no session with id " + sessionID}
	case domain.SessionNotTheirs:
		return domain.SessionAuth{}, &Error{Kind: Forbidden, Detail: "session " + sessionID + " is not assigned to " + user.Name}
	}
	out.Session, out.UpstreamURL = &s, &s.UpstreamURL
	return out, nil
}
