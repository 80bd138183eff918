package app

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/config/adapters"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListSessions returns the sessions f selects; staged ones have no user.
func (a *App) ListSessions(ctx context.Context, f domain.SessionFilter) ([]domain.Session, error) {
	if errs := f.Validate(); len(errs) > 0 {
		return nil, invalid(errs)
	}
	return adapters.ListSessions(ctx, a.db, f)
}

// GetSession returns the session with id.
func (a *App) GetSession(ctx context.Context, id string) (domain.Session, error) {
	if err := checkID(id); err != nil {
		return domain.Session{}, err
	}
	s, err := adapters.GetSession(ctx, a.db, id)
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
	err := db.InTx(ctx, a.db, func(tx *sqlx.Tx) (err error) {
		if s, err = adapters.GetSession(ctx, tx, id); err != nil {
			return notFoundOr(err, "no session with id %s", id)
		}
		if !sessions.Status(s.Status).Live() {
			return nil
		}
		_, err = outbox.Emit(ctx, tx, a.source, events.TypeSessionDestroy, events.TypeSessionDestroy,
			events.SessionDestroy{SessionID: s.ID, Reason: "api"}, deref(s.RequestID))
		return err
	})
	return s, err
}
