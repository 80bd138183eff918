package domain

import "github.com/greenroom-dev/greenroom/libs/sessions"

// SessionAuth answers GET /api/v1/session-auth: the user a sign-in token
// belongs to and, when a session was asked about, that session and the
// internal address its traffic goes to.
type SessionAuth struct {
	User        string   `json:"user"`
	UserID      string   `json:"user_id"`
	Session     *Session `json:"session,omitempty"`
	UpstreamURL *string  `json:"upstream_url,omitempty"`
}

// SessionAccess is whether a signed-in user may reach a session.
type SessionAccess int

const (
	// SessionTheirs: the session is live and assigned to the user.
	SessionTheirs SessionAccess = iota + 1
	// SessionEnded: destroyed or failed; answered as if it did not exist.
	SessionEnded
	// SessionNotTheirs: another user's, or staged and nobody's yet.
	SessionNotTheirs
)

// AccessOf decides whether the user with userID may reach s. An ended
// session is no one's, so that is said first: its former user is told
// what anyone is.
func AccessOf(s Session, userID string) SessionAccess {
	switch {
	case !sessions.Status(s.Status).Live():
		return SessionEnded
	case s.UserID == nil || *s.UserID != userID:
		return SessionNotTheirs
	}
	return SessionTheirs
}
