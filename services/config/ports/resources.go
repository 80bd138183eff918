package ports

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// The configuration resources all work alike: list, get, create, update
// and delete by the path parameter key (name, username or id). These build
// their handlers from the use cases.

// list answers one page of a list, {"items": [...], "next_cursor": ...},
// the page chosen by ?limit= and ?cursor= (domain.ParsePage).
func list[T any](rs responder, fn func(context.Context, domain.Page) (domain.Paged[T], error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, ok := pageOf(rs, w, r)
		if !ok {
			return
		}
		items, err := fn(r.Context(), page)
		if err != nil {
			rs.fail(w, r, err)
			return
		}
		rs.json(w, http.StatusOK, itemsOf(items))
	}
}

// pageOf reads the page a list request asks for, answering 400 and
// returning false when its ?limit= or ?cursor= is wrong.
func pageOf(rs responder, w http.ResponseWriter, r *http.Request) (domain.Page, bool) {
	q := r.URL.Query()
	page, errs := domain.ParsePage(q.Get("limit"), q.Get("cursor"))
	if len(errs) > 0 {
		rs.invalid(w, errs)
		return page, false
	}
	return page, true
}

func get[T any](rs responder, key string, fn func(context.Context, string) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r.Context(), chi.URLParam(r, key))
		if err != nil {
			rs.fail(w, r, err)
			return
		}
		rs.json(w, http.StatusOK, v)
	}
}

func create[In, T any](rs responder, fn func(context.Context, In) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, ok := decode[In](rs, w, r)
		if !ok {
			return
		}
		v, err := fn(r.Context(), in)
		if err != nil {
			rs.fail(w, r, err)
			return
		}
		rs.json(w, http.StatusCreated, v)
	}
}

func update[In, T any](rs responder, key string, fn func(context.Context, string, In) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, ok := decode[In](rs, w, r)
		if !ok {
			return
		}
		v, err := fn(r.Context(), chi.URLParam(r, key), in)
		if err != nil {
			rs.fail(w, r, err)
			return
		}
		rs.json(w, http.StatusOK, v)
	}
}

func remove(rs responder, key string, fn func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(r.Context(), chi.URLParam(r, key)); err != nil {
			rs.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// List is the body of every list answer: one page of items and, when
// more follow, the ?cursor= of the next page.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func itemsOf[T any](page domain.Paged[T]) List[T] {
	items := page.Items
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, NextCursor: domain.Cursor(page.Next)}
}
