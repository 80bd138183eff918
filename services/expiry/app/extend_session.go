package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// Keepalives writes keepalives where the sessions are
// (adapters/postgres.Keepalives, in PostgreSQL).
type Keepalives interface {
	// Keepalive moves running session id's keepalive deadline, and its
	// expires_at, to at plus its keepalive_expiration, never earlier
	// than they are (libs/sessions.Keepalive). It fails with
	// sessions.ErrNotFound when there is no such session, and with
	// sessions.ErrStale, returning the session, when it is not running.
	Keepalive(ctx context.Context, id string, at time.Time) (sessions.Session, error)
}

// KeepaliveOutcome says what a keepalive did (the keepalive metric's
// label).
type KeepaliveOutcome string

// Outcomes of ExtendSession.
const (
	KeepaliveExtended KeepaliveOutcome = "extended"
	// KeepaliveNotRunning: the session is not running (still starting, or
	// already ended): it has no deadline to move.
	KeepaliveNotRunning KeepaliveOutcome = "not_running"
	// KeepaliveUnknownSession: no such session.
	KeepaliveUnknownSession KeepaliveOutcome = "unknown_session"
)

// KeepaliveResult is what one keepalive did.
type KeepaliveResult struct {
	Outcome KeepaliveOutcome
	// At is the time the keepalive counted from (domain.KeepaliveFrom).
	At time.Time
	// Session is the session as the keepalive left it; empty when it is
	// unknown.
	Session sessions.Session
}

// ExtendSession handles greenroom.session.keepalive (published by the
// config service's POST /api/v1/sessions/{id}/keepalive and by the gateway
// on a session's traffic): the session's keepalive deadline moves to the
// keepalive's time plus its keepalive_expiration, and its expires_at with
// it. A deadline is never shortened, so a redelivered or replayed
// keepalive is harmless. The sweeper then ends the session at the new
// deadline, not the old one.
type ExtendSession struct {
	Sessions Keepalives
	// Now is the clock a keepalive never counts from later than; nil
	// means time.Now.
	Now func() time.Time
}

// Handle extends session sessionID on a keepalive sent at sentAt. A
// session that is not running, or not there at all, has nothing to
// extend: that is an outcome, not an error, and nothing is retried.
func (uc ExtendSession) Handle(ctx context.Context, sessionID string, sentAt time.Time) (KeepaliveResult, error) {
	now := time.Now
	if uc.Now != nil {
		now = uc.Now
	}
	at := domain.KeepaliveFrom(sentAt, now())
	s, err := uc.Sessions.Keepalive(ctx, sessionID, at)
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		return KeepaliveResult{Outcome: KeepaliveUnknownSession, At: at}, nil
	case errors.Is(err, sessions.ErrStale):
		return KeepaliveResult{Outcome: KeepaliveNotRunning, At: at, Session: s}, nil
	case err != nil:
		return KeepaliveResult{At: at}, fmt.Errorf("error extending session %s: %w", sessionID, err)
	}
	return KeepaliveResult{Outcome: KeepaliveExtended, At: at, Session: s}, nil
}
