// Package postgres fires the expiry service's timers and writes its
// keepalives in PostgreSQL. Each timer is one transaction per batch
// (SessionTimers, one file per timer, their selections in queries.go):
// it selects the due sessions, moves each through libs/sessions, which
// owns status changes, and writes the events announcing it to the outbox
// in the same transaction; the provisioner acts on greenroom.session.expired
// and greenroom.session.destroy (removes the container and refills the
// staging pool). Keepalives moves a running session's deadlines
// (libs/sessions.Keepalive).
//
// Every replica may sweep at the same time: due sessions are selected with
// FOR UPDATE SKIP LOCKED, so each one is fired by exactly one replica, and a
// session being claimed by the assigner at that moment is skipped rather
// than expired under it (the claim takes staged rows with SKIP LOCKED too,
// so it skips a session being expired: a container is never both handed to
// a user and destroyed).
package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
)

// SessionTimers fires the session timers in the sessions table.
type SessionTimers struct {
	db  *sqlx.DB
	log *zap.Logger
}

// NewSessionTimers returns the timers of the sessions in conn; each
// session they fire for is logged, as the sweeper's, on log.
func NewSessionTimers(conn *sqlx.DB, log *zap.Logger) *SessionTimers {
	return &SessionTimers{db: conn, log: log.Named("sweeper")}
}

var _ app.SessionTimers = (*SessionTimers)(nil)

// fireBatch fires one batch of a timer in one transaction: selectBatch
// takes its due sessions (at most p.Limit, locked), and fire changes and
// announces each in tx, false when the session left its status meanwhile
// (which the row lock rules out; its timer no longer applies then). full
// reports whether the batch was full, i.e. more may be due. On an error
// the transaction rolls back and nothing is counted.
func (s *SessionTimers) fireBatch(ctx context.Context, p app.TimerParams,
	selectBatch func(context.Context, sessions.Queryer, app.TimerParams) ([]dueSession, error),
	fire func(ctx context.Context, tx *sqlx.Tx, d dueSession) (bool, error),
) (changed int, full bool, err error) {
	err = db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		due, err := selectBatch(ctx, tx, p)
		if err != nil {
			return err
		}
		full = len(due) == p.Limit
		for _, d := range due {
			fired, err := fire(ctx, tx, d)
			if err != nil {
				return err
			}
			if fired {
				changed++
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return changed, full, nil
}
