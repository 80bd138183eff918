package ports

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// sessionHandlers serve /api/v1/sessions and /api/v1/violations.
type sessionHandlers struct {
	rs  responder
	app *app.App
}

// request serves POST /api/v1/sessions: 201 with the running session, 200
// with the session an earlier request with the same request_id made (once
// it runs), 202 while the outcome is not known within ?wait=.
func (h sessionHandlers) request(w http.ResponseWriter, r *http.Request) {
	wait, err := domain.ParseWait(r.URL.Query().Get("wait"))
	if err != nil {
		h.rs.invalid(w, domain.FieldErrors{{Field: "wait", Detail: err.Error()}})
		return
	}
	in, ok := decode[domain.SessionRequest](h.rs, w, r)
	if !ok {
		return
	}
	out, err := h.app.RequestSession(r.Context(), in, r.Header.Get(domain.IdempotencyKeyField), wait)
	if err != nil {
		h.rs.fail(w, r, err)
		return
	}
	switch out.Result {
	case app.SessionExisted:
		h.rs.json(w, http.StatusOK, out.Session)
	case app.SessionReady:
		h.rs.json(w, http.StatusCreated, out.Session)
	default:
		h.rs.json(w, http.StatusAccepted, out.Accepted)
	}
}

func (h sessionHandlers) list(w http.ResponseWriter, r *http.Request) {
	page, ok := pageOf(h.rs, w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := domain.SessionFilter{
		User:          q.Get("user"),
		Status:        q.Get("status"),
		StagingConfig: q.Get("staging_config"),
		Origin:        q.Get("origin"),
	}
	if v := q.Get("ended"); v != "" {
		ended, err := strconv.ParseBool(v)
		if err != nil {
			h.rs.invalid(w, domain.FieldErrors{{Field: "ended", Detail: "must be true or false"}})
			return
		}
		f.Ended = &ended
	}
	ss, err := h.app.ListSessions(r.Context(), f, page)
	if err != nil {
		h.rs.fail(w, r, err)
		return
	}
	h.rs.json(w, http.StatusOK, itemsOf(ss))
}

// destroy serves DELETE /api/v1/sessions/{id}: destruction is asynchronous,
// so the answer is 202 with the session as it is now.
func (h sessionHandlers) destroy(w http.ResponseWriter, r *http.Request) {
	s, err := h.app.DestroySession(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		h.rs.fail(w, r, err)
		return
	}
	h.rs.json(w, http.StatusAccepted, s)
}

// keepalive serves POST /api/v1/sessions/{id}/keepalive: 200 with the
// session, its expires_at moved.
func (h sessionHandlers) keepalive(w http.ResponseWriter, r *http.Request) {
	s, err := h.app.KeepSessionAlive(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		h.rs.fail(w, r, err)
		return
	}
	h.rs.json(w, http.StatusOK, s)
}

func (h sessionHandlers) violations(w http.ResponseWriter, r *http.Request) {
	page, ok := pageOf(h.rs, w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	vs, err := h.app.ListViolations(r.Context(), domain.ViolationFilter{User: q.Get("user"), Workspace: q.Get("workspace")}, page)
	if err != nil {
		h.rs.fail(w, r, err)
		return
	}
	h.rs.json(w, http.StatusOK, itemsOf(vs))
}
