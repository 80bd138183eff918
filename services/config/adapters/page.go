package adapters

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// keyset is the order of a list (domain.Page): the columns it is sorted
// by, which end in a unique one, their direction, and how an item's sort
// key is read back for the next page's cursor.
type keyset[T any] struct {
	columns []string
	desc    bool
	key     func(T) []string
}

// byName is the order of the lists sorted by a unique name column.
func byName[T any](column string, name func(T) string) keyset[T] {
	return keyset[T]{columns: []string{column}, key: func(v T) []string { return []string{name(v)} }}
}

// newestFirst is the order of the lists of events (sessions, violations):
// by created_at and id of the table aliased alias, newest first.
func newestFirst[T any](key func(T) (time.Time, string), alias string) keyset[T] {
	return keyset[T]{
		columns: []string{alias + ".created_at", alias + ".id"},
		desc:    true,
		key: func(v T) []string {
			at, id := key(v)
			return []string{at.Format(time.RFC3339Nano), id}
		},
	}
}

// listPage loads one page of the rows of query (a SELECT without WHERE)
// that match conds (SQL conditions on args, all of them), in the order of
// ks, after p.After: a row comparison on the sort columns, which their
// index answers without reading the rows before the page.
func listPage[T any](ctx context.Context, q Queryer, what, query string, conds []string, args []any, ks keyset[T], p domain.Page) (domain.Paged[T], error) {
	if len(p.After) > 0 {
		if len(p.After) != len(ks.columns) {
			return domain.Paged[T]{}, fmt.Errorf("listing %s: %w", what, app.ErrBadCursor)
		}
		params := make([]string, len(p.After))
		for i, v := range p.After {
			args = append(args, v)
			params[i] = fmt.Sprintf("$%d", len(args))
		}
		op := ">"
		if ks.desc {
			op = "<"
		}
		conds = append(conds, fmt.Sprintf("(%s) %s (%s)", strings.Join(ks.columns, ", "), op, strings.Join(params, ", ")))
	}
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	order := make([]string, len(ks.columns))
	for i, c := range ks.columns {
		order[i] = c
		if ks.desc {
			order[i] += " DESC"
		}
	}
	args = append(args, p.Limit+1) // one more tells whether a next page exists
	query += fmt.Sprintf(" ORDER BY %s LIMIT $%d", strings.Join(order, ", "), len(args))

	var items []T
	if err := q.SelectContext(ctx, &items, query, args...); err != nil {
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code.Class() == "22" { // data exception: a cursor value of the wrong type
			return domain.Paged[T]{}, fmt.Errorf("listing %s: %w", what, app.ErrBadCursor)
		}
		return domain.Paged[T]{}, fmt.Errorf("listing %s: %w", what, err)
	}
	page := domain.Paged[T]{Items: items}
	if len(items) > p.Limit {
		page.Items = items[:p.Limit]
		page.Next = ks.key(page.Items[p.Limit-1])
	}
	return page, nil
}
