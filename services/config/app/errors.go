package app

import (
	"errors"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// Kind is what went wrong with a use case, as the API answers it.
type Kind int

// Kinds of Error.
const (
	// Invalid: the request is wrong (400); Fields says where.
	Invalid Kind = iota + 1
	// NotFound: what the request names does not exist (404).
	NotFound
	// Conflict: the current state forbids the change (409).
	Conflict
	// NoCapacity: no zone, agent or staged session could serve a session
	// request (503).
	NoCapacity
	// ProvisioningFailed: the session could not be made for another reason
	// (502).
	ProvisioningFailed
	// Unauthenticated: the request carries no live sign-in token (401).
	Unauthenticated
	// Forbidden: the signed-in user may not reach what the request names
	// (403).
	Forbidden
	// Unavailable: the request was not accepted, for a cause that passes
	// (the database unreachable): nothing was done, and the same request
	// may be sent again later (503 with Retry-After).
	Unavailable
)

// Error is a use case's refusal. When Fields is set, its first entry names
// the offending field.
type Error struct {
	Kind   Kind
	Detail string
	Fields domain.FieldErrors
}

func (e *Error) Error() string { return e.Detail }

// invalid refuses a request whose fields have problems.
func invalid(errs domain.FieldErrors) *Error {
	first := errs[0]
	detail := first.Detail
	if first.Field != "" {
		detail = first.Field + ": " + detail
	}
	return &Error{Kind: Invalid, Detail: detail, Fields: errs}
}

// fieldError refuses a request because of one field.
func fieldError(kind Kind, field, format string, args ...any) *Error {
	detail := fmt.Sprintf(format, args...)
	return &Error{Kind: kind, Detail: field + ": " + detail, Fields: domain.FieldErrors{{Field: field, Detail: detail}}}
}

// paged turns a list's ErrBadCursor into the refusal of its ?cursor=.
func paged[T any](page domain.Paged[T], err error) (domain.Paged[T], error) {
	if errors.Is(err, ErrBadCursor) {
		return page, fieldError(Invalid, "cursor", "is not a cursor of this list (use next_cursor of its previous page as it is)")
	}
	return page, err
}

func conflict(format string, args ...any) *Error {
	return &Error{Kind: Conflict, Detail: fmt.Sprintf(format, args...)}
}
