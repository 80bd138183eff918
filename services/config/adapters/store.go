// Package adapters is the config service's PostgreSQL: one file per table
// it owns (zones, pools, agents, servers, workspaces, groups, users and
// user_groups, staging_configs, web_filter_policies), and read-only views of the sessions and
// violations tables, which other services write (sessions only through
// libs/sessions). Rows come back as domain types, with references resolved
// to names.
package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Queryer is a *sqlx.DB or a *sqlx.Tx.
type Queryer interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// ErrNotFound means no row matched.
var ErrNotFound = errors.New("not found")

// Lock is the row lock a read takes on the row it returns, inside the
// caller's transaction.
type Lock int

const (
	// NoLock reads without locking.
	NoLock Lock = iota
	// ForShare keeps the row from changing until the transaction ends: for
	// rows whose attributes a write depends on (a zone's domains when a
	// staging config is created, a pool's type when an agent joins it).
	ForShare
	// ForUpdate is taken on a row about to be changed.
	ForUpdate
)

// clause returns the locking clause for the table aliased alias.
func (l Lock) clause(alias string) string {
	switch l {
	case ForShare:
		return " FOR SHARE OF " + alias
	case ForUpdate:
		return " FOR UPDATE OF " + alias
	}
	return ""
}

// get loads one row into dest, turning "no rows" into ErrNotFound.
func get(ctx context.Context, q Queryer, dest any, what, query string, args ...any) error {
	err := q.GetContext(ctx, dest, query, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
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
		return fmt.Errorf("%s: %w", what, ErrNotFound)
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
