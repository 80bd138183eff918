// Package adapters is the config service's PostgreSQL: one file per table
// it owns (zones, pools, agents, servers, workspaces, groups, users and
// user_groups, staging_configs, web_filter_policies, api_keys), and read-only views of the sessions and
// violations tables, which other services write (sessions only through
// libs/sessions), and of sign_ins (through libs/signin). Rows come back as domain types, with references resolved
// to names. Store implements app.Store.
package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/config/app"
)

// Store is the config service's database.
type Store struct {
	// Tables reads and writes outside any transaction.
	Tables
	db *sqlx.DB
}

// NewStore returns the Store of conn.
func NewStore(conn *sqlx.DB) *Store {
	return &Store{Tables: Tables{conn}, db: conn}
}

// InTx runs fn in one transaction. The database's refusals of a write
// (unique, foreign key, check, data exception) come back as
// *app.RefusedError.
func (s *Store) InTx(ctx context.Context, fn func(tx app.Tx) error) error {
	return refused(db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		return fn(Tx{Tables{tx}})
	}))
}

// Snapshot runs the reads of fn in one read-only, repeatable-read
// transaction.
func (s *Store) Snapshot(ctx context.Context, fn func(tables app.Tables) error) error {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("beginning a read-only transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(Tables{tx})
}

// refused says what rule the database refused a write for, when it did.
func refused(err error) error {
	var pqErr *pq.Error
	switch {
	case db.IsUniqueViolation(err):
		return &app.RefusedError{Refusal: app.RefusedDuplicate, Err: err}
	case db.IsForeignKeyViolation(err) && errors.As(err, &pqErr):
		return &app.RefusedError{Refusal: app.RefusedReferenced, Table: pqErr.Table, Err: err}
	case errors.As(err, &pqErr) && (pqErr.Code.Class() == "22" || pqErr.Code == "23514"):
		// A data exception or a CHECK the validation did not foresee.
		return &app.RefusedError{Refusal: app.RefusedValue, Message: pqErr.Message, Err: err}
	}
	return err
}

// Tables reads and writes the tables through its Queryer: the database,
// or one transaction.
type Tables struct{ Queryer }

// Tx is one transaction of Store.InTx.
type Tx struct{ Tables }

// Enqueue writes ev into the transaction's outbox.
func (t Tx) Enqueue(ctx context.Context, subject string, ev events.Event, requestID string) error {
	return outbox.Enqueue(ctx, t.Queryer, subject, ev, requestID)
}

// KeepSessionAlive is libs/sessions.Keepalive in the transaction.
func (t Tx) KeepSessionAlive(ctx context.Context, id string, at time.Time) (sessions.Session, error) {
	return sessions.Keepalive(ctx, t.Queryer, id, at)
}

var (
	_ app.Store = (*Store)(nil)
	_ app.Tx    = Tx{}
)

// Queryer is a *sqlx.DB or a *sqlx.Tx.
type Queryer interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// clause returns the locking clause of l for the table aliased alias.
func clause(l app.Lock, alias string) string {
	switch l {
	case app.ForShare:
		return " FOR SHARE OF " + alias
	case app.ForUpdate:
		return " FOR UPDATE OF " + alias
	}
	return ""
}

// get loads one row into dest, turning "no rows" into app.ErrNotFound.
func get(ctx context.Context, q Queryer, dest any, what, query string, args ...any) error {
	err := q.GetContext(ctx, dest, query, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, app.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("loading %s: %w", what, err)
	}
	return nil
}

// exec runs a statement that must change exactly one row.
func exec(ctx context.Context, q Queryer, what, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, app.ErrNotFound)
	}
	return nil
}

// listInPools loads the rows of selectQuery (what names them) whose
// column, a pool reference, is one of ids, ordered by orderBy.
func listInPools[T any](ctx context.Context, q Queryer, what, selectQuery, column string, ids []string, orderBy string) ([]T, error) {
	var rows []T
	err := q.SelectContext(ctx, &rows, selectQuery+` WHERE `+column+` = ANY($1) ORDER BY `+orderBy, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("listing %s of pools: %w", what, err)
	}
	return rows, nil
}
