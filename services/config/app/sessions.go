package app

import (
	"context"
	"errors"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListSessions returns one page of the sessions f selects; staged ones
// have no user.
func (a *App) ListSessions(ctx context.Context, f domain.SessionFilter, p domain.Page) (domain.Paged[domain.Session], error) {
	if errs := f.Validate(); len(errs) > 0 {
		return domain.Paged[domain.Session]{}, invalid(errs)
	}
	return paged(a.store.ListSessions(ctx, f, p))
}

// GetSession returns the session with id.
func (a *App) GetSession(ctx context.Context, id string) (domain.Session, error) {
	if err := checkID(id); err != nil {
		return domain.Session{}, err
	}
	s, err := a.store.GetSession(ctx, id)
	return s, notFoundOr(err, "no session with id %s", id)
}

// DestroySession asks the provisioner to destroy the session with id, by a
// greenroom.session.destroy in the outbox; the provisioner moves it through
// destroying to destroyed. A session already gone is returned as it is.
func (a *App) DestroySession(ctx context.Context, id string) (domain.Session, error) {
	if err := checkID(id); err != nil {
		return domain.Session{}, err
	}
	var s domain.Session
	err := a.store.InTx(ctx, func(tx Tx) (err error) {
		if s, err = tx.GetSession(ctx, id); err != nil {
			return notFoundOr(err, "no session with id %s", id)
		}
		if !sessions.Status(s.Status).Live() {
			return nil
		}
		return a.emit(ctx, tx, events.TypeSessionDestroy, events.TypeSessionDestroy,
			events.SessionDestroy{SessionID: s.ID, Reason: "api"}, deref(s.RequestID))
	})
	return s, err
}

// KeepSessionAlive serves POST /api/v1/sessions/{id}/keepalive: the running
// session with id is in use now, so its keepalive deadline moves to now
// plus its keepalive_expiration, and its expires_at with it
// (libs/sessions.Keepalive; a session without a keepalive expiration is
// unchanged). In the same transaction greenroom.session.keepalive, stamped
// with the same time, goes to the outbox: the audit log shows it, and the
// expiry service applying it again changes nothing. A session that is not
// running has no deadline to move: a conflict.
func (a *App) KeepSessionAlive(ctx context.Context, id string) (domain.Session, error) {
	if err := checkID(id); err != nil {
		return domain.Session{}, err
	}
	var s domain.Session
	err := a.store.InTx(ctx, func(tx Tx) error {
		// PostgreSQL keeps microseconds: the event says exactly the time
		// the row was kept alive from.
		at := time.Now().UTC().Truncate(time.Microsecond)
		kept, err := tx.KeepSessionAlive(ctx, id, at)
		switch {
		case errors.Is(err, sessions.ErrNotFound):
			return &Error{Kind: NotFound, Detail: "no session with id " + id}
		case errors.Is(err, sessions.ErrStale):
			return conflict("session %s is %s: only a running session can be kept alive", id, kept.Status)
		case err != nil:
			return err
		}
		requestID := kept.RequestID.String
		ev, err := events.New(a.source, events.TypeSessionKeepalive, events.SessionKeepalive{SessionID: id, RequestID: requestID})
		if err != nil {
			return err
		}
		ev.Time = at
		if err := tx.Enqueue(ctx, events.TypeSessionKeepalive, ev, requestID); err != nil {
			return err
		}
		s, err = tx.GetSession(ctx, id)
		return err
	})
	return s, err
}
