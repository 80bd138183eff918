package ports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// Problem is an RFC 9457 problem details body. Field names the first
// offending field, Errors lists every problem, for validation failures.
type Problem struct {
	Type   string             `json:"type"`
	Title  string             `json:"title"`
	Status int                `json:"status"`
	Detail string             `json:"detail"`
	Field  string             `json:"field,omitempty"`
	Errors domain.FieldErrors `json:"errors,omitempty"`
}

// statusOf is the HTTP status of each kind of refusal.
var statusOf = map[app.Kind]int{
	app.Invalid:            http.StatusBadRequest,
	app.NotFound:           http.StatusNotFound,
	app.Conflict:           http.StatusConflict,
	app.NoCapacity:         http.StatusServiceUnavailable,
	app.ProvisioningFailed: http.StatusBadGateway,
	app.Unauthenticated:    http.StatusUnauthorized,
	app.Forbidden:          http.StatusForbidden,
	app.Unavailable:        http.StatusServiceUnavailable,
}

// retryAfterSeconds is the Retry-After of a request not accepted for a
// cause that passes.
const retryAfterSeconds = "5"

// responder writes answers, and logs what the client cannot be told.
type responder struct {
	log *zap.Logger
}

func (rs responder) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	encode(w, v)
}

func (rs responder) problem(w http.ResponseWriter, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	p.Title = http.StatusText(p.Status)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	encode(w, p)
}

// encode writes v as JSON; <, > and & stay as they are, since answers are
// never embedded in HTML.
func encode(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// fail answers err: a use case's refusal with its status, anything else as
// a 500 whose cause goes to the log, not to the client.
func (rs responder) fail(w http.ResponseWriter, r *http.Request, err error) {
	var refusal *app.Error
	if !errors.As(err, &refusal) {
		if r.Context().Err() != nil {
			return // the client is gone
		}
		rs.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		rs.problem(w, Problem{Status: http.StatusInternalServerError, Detail: "internal error; the service log has the cause"})
		return
	}
	switch refusal.Kind {
	case app.Unauthenticated:
		w.Header().Set("WWW-Authenticate", bearerChallenge)
	case app.Unavailable:
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	rs.problem(w, problemOf(statusOf[refusal.Kind], refusal.Detail, refusal.Fields))
}

// invalid answers 400 for the field errors of a request.
func (rs responder) invalid(w http.ResponseWriter, errs domain.FieldErrors) {
	detail := errs[0].Detail
	if errs[0].Field != "" {
		detail = errs[0].Field + ": " + detail
	}
	rs.problem(w, problemOf(http.StatusBadRequest, detail, errs))
}

func problemOf(status int, detail string, errs domain.FieldErrors) Problem {
	p := Problem{Status: status, Detail: detail}
	// A problem with the body as a whole (not JSON, empty) has no field.
	if len(errs) > 0 && errs[0].Field != "" {
		p.Field, p.Errors = errs[0].Field, errs
	}
	return p
}

// maxBodyBytes bounds request bodies; configuration objects are small.
const maxBodyBytes = 1 << 20

// tooLargeDetail is the detail of the 413 answering a larger body.
var tooLargeDetail = fmt.Sprintf("the request body is larger than the limit of %d bytes (1 MiB)", maxBodyBytes)

// decode reads a JSON request body into a value of type In strictly (see
// domain.Decode), answering 400 (413 for a body over maxBodyBytes) and
// returning false when it cannot.
func decode[In any](rs responder, w http.ResponseWriter, r *http.Request) (In, bool) {
	var in In
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			rs.problem(w, Problem{Status: http.StatusRequestEntityTooLarge, Detail: tooLargeDetail})
		} else {
			rs.problem(w, Problem{Status: http.StatusBadRequest, Detail: "reading request body: " + err.Error()})
		}
		return in, false
	}
	if errs := domain.Decode(body, &in, ""); len(errs) > 0 {
		rs.invalid(w, errs)
		return in, false
	}
	return in, true
}
