package ports

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// The configuration resources all work alike: list, get, create, update
// and delete by the path parameter key (name, username or id). These build
// their handlers from the use cases.

// list answers {"items": [...]}.
func list[T any](rs responder, fn func(context.Context) ([]T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		items, err := fn(r.Context())
		if err != nil {
			rs.fail(w, r, err)
			return
		}
		rs.json(w, http.StatusOK, itemsOf(items))
	}
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

// List is the body of every list answer.
type List[T any] struct {
	Items []T `json:"items"`
}

func itemsOf[T any](items []T) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items}
}
