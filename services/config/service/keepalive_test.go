package service_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// runningWithLimits stores an on-demand session of alice for requestID with
// her group's limits, as the assigner would, and starts it.
func (h *harness) runningWithLimits(w world, requestID string, limits sessions.Limits) sessions.Session {
	h.t.Helper()
	ctx := context.Background()
	s, err := sessions.Insert(ctx, h.deps.DB, sessions.New{
		ID: uuid.NewString(), RequestID: requestID, WorkspaceID: w.workspace.str("id"), ZoneID: w.zone.str("id"),
		UserID: w.user.str("id"), Origin: sessions.OriginOnDemand, Cores: 0.5, MemoryMB: 256, Limits: limits,
		OnDemandReason: events.OnDemandNoStagingConfig,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if s, err = sessions.Transition(ctx, h.deps.DB, s.ID, sessions.Provisioning, sessions.Running, sessions.Change{
		ContainerID: sessions.Ptr("c0ffee"), URL: sessions.Ptr("http://127.0.0.1:32768/"),
	}); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// Issue 10, point 3: POST /api/v1/sessions/{id}/keepalive moves a running
// session's expires_at to now plus its keepalive_expiration and announces
// greenroom.session.keepalive through the outbox; it answers the session as
// GET does.
func TestSessionKeepaliveExtendsARunningSession(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	h.relayOnce() // the world's config changes
	const expiration = 10 * time.Minute
	s := h.runningWithLimits(w, "req-kept", sessions.Limits{TimeLimit: 8 * time.Hour, KeepaliveExpiration: expiration})
	// Its last keepalive was five minutes ago.
	h.deps.DB.MustExec(`UPDATE sessions SET keepalive_at = keepalive_at - interval '5 minutes',
		expires_at = keepalive_at - interval '5 minutes' WHERE id = $1`, s.ID)

	before := time.Now()
	var got obj
	h.must(http.StatusOK, "POST", "/api/v1/sessions/"+s.ID+"/keepalive", nil, &got)
	after := time.Now()
	expires, err := time.Parse(time.RFC3339Nano, got.str("expires_at"))
	if err != nil {
		t.Fatalf("expires_at %v: %v", got["expires_at"], err)
	}
	// The database's clock and this test's are the same machine's.
	if expires.Before(before.Add(expiration-time.Second)) || expires.After(after.Add(expiration+time.Second)) {
		t.Errorf("expires_at %s, want now plus %s (%s…%s)", expires, expiration, before.Add(expiration), after.Add(expiration))
	}
	if got.str("id") != s.ID || got.str("status") != "running" || got.str("user") != "alice" {
		t.Errorf("answer %v, want the running session of alice", got)
	}
	var again obj
	h.must(http.StatusOK, "GET", "/api/v1/sessions/"+s.ID, nil, &again)
	if again.str("expires_at") != got.str("expires_at") || len(again) != len(got) {
		t.Errorf("GET answers %v, the keepalive answered %v", again, got)
	}
	row, err := sessions.Get(context.Background(), h.deps.DB, s.ID)
	if err != nil || !row.KeepaliveAt.Time.Equal(expires) || !row.TimeLimitAt.Time.Equal(s.TimeLimitAt.Time) {
		t.Errorf("row keepalive_at %v time_limit_at %v (%v), want %v and %v", row.KeepaliveAt.Time, row.TimeLimitAt.Time, err, expires, s.TimeLimitAt.Time)
	}

	if n := h.relayOnce(); n != 1 {
		t.Fatalf("relay published %d events, want 1", n)
	}
	msg := nextEvent(t, h.streamConsumer(events.TypeSessionKeepalive))
	var kept events.SessionKeepalive
	ev := h.decodeEvent(msg.Data(), &kept)
	if kept != (events.SessionKeepalive{SessionID: s.ID, RequestID: "req-kept"}) || msg.Headers().Get(events.HeaderRequestID) != "req-kept" {
		t.Errorf("keepalive event %+v, request header %q", kept, msg.Headers().Get(events.HeaderRequestID))
	}
	// The event's time is the keepalive's, so applying it again (the
	// expiry service does) moves nothing.
	if !ev.Time.Add(expiration).Equal(expires) {
		t.Errorf("event time %s plus %s is not expires_at %s", ev.Time, expiration, expires)
	}
}

// A session without a keepalive expiration is kept alive without change:
// its expires_at is its time limit, or none.
func TestSessionKeepaliveWithoutExpirationChangesNothing(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	limited := h.runningWithLimits(w, "req-limited", sessions.Limits{TimeLimit: time.Hour})
	var got obj
	h.must(http.StatusOK, "POST", "/api/v1/sessions/"+limited.ID+"/keepalive", nil, &got)
	if expires, err := time.Parse(time.RFC3339Nano, got.str("expires_at")); err != nil || !expires.Equal(limited.TimeLimitAt.Time) {
		t.Errorf("expires_at %v (%v), want the time limit %s", got["expires_at"], err, limited.TimeLimitAt.Time)
	}
	unlimited := h.runningWithLimits(w, "req-unlimited", sessions.Limits{})
	h.must(http.StatusOK, "POST", "/api/v1/sessions/"+unlimited.ID+"/keepalive", nil, &got)
	if got["expires_at"] != nil {
		t.Errorf("expires_at %v, want none", got["expires_at"])
	}
}

// Only a running session can be kept alive: 409 for one still starting or
// already ended, 404 for none, 400 for an id that is not one; nothing is
// announced.
func TestSessionKeepaliveRefusals(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	h.relayOnce()
	ctx := context.Background()
	starting := h.insertSession(w, "req-starting", sessions.Provisioning, "")
	ended := h.runningWithLimits(w, "req-ended", sessions.Limits{KeepaliveExpiration: time.Minute})
	if _, err := sessions.Transition(ctx, h.deps.DB, ended.ID, sessions.Running, sessions.Destroying, sessions.Change{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []sessions.Session{starting, ended} {
		p := h.problem(http.StatusConflict, "", "POST", "/api/v1/sessions/"+s.ID+"/keepalive", nil)
		if p.Detail == "" {
			t.Errorf("conflict for %s says nothing", s.ID)
		}
	}
	h.problem(http.StatusNotFound, "", "POST", "/api/v1/sessions/"+uuid.NewString()+"/keepalive", nil)
	h.problem(http.StatusBadRequest, "id", "POST", "/api/v1/sessions/42/keepalive", nil)
	h.problem(http.StatusUnauthorized, "", "POST", "/api/v1/sessions/"+ended.ID+"/keepalive", nil, withoutToken())
	if n := h.outboxRows(); n != 0 {
		t.Errorf("%d events in the outbox, want none", n)
	}
}
