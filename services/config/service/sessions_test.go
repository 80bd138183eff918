package service_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// sessionRequest is the body of a request for alice's demo session in eu.
func sessionRequest(extra ...string) obj {
	o := obj{"user": "alice", "workspace": "demo", "zone": "eu"}
	for i := 0; i+1 < len(extra); i += 2 {
		o[extra[i]] = extra[i+1]
	}
	return o
}

func TestSessionRequestValidation(t *testing.T) {
	h := newHarness(t)
	h.world()
	for _, tc := range []struct {
		name, path string
		body       any
		opts       []callOption
		field      string
	}{
		{"missing user", "/api/v1/sessions", obj{"workspace": "demo", "zone": "eu"}, nil, "user"},
		{"empty workspace", "/api/v1/sessions", sessionRequest("workspace", ""), nil, "workspace"},
		{"unknown field", "/api/v1/sessions", sessionRequest("image", "x"), nil, "image"},
		{"request_id too long", "/api/v1/sessions", sessionRequest("request_id", strings.Repeat("r", 201)), nil, "request_id"},
		{"Idempotency-Key differs from request_id", "/api/v1/sessions", sessionRequest("request_id", "r1"),
			[]callOption{withHeader("Idempotency-Key", "r2")}, "Idempotency-Key"},
		{"wait not a duration", "/api/v1/sessions?wait=soon", sessionRequest(), nil, "wait"},
		{"wait beyond 300s", "/api/v1/sessions?wait=301s", sessionRequest(), nil, "wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.in(t).problem(http.StatusBadRequest, tc.field, "POST", tc.path, tc.body, tc.opts...)
		})
	}
	if got := h.events.Find(events.TypeSessionRequested, ""); len(got) != 0 {
		t.Errorf("invalid requests were published: %d", len(got))
	}
}

func TestSessionRequestForUnknownUserIsNotFound(t *testing.T) {
	h := newHarness(t)
	h.world()
	h.problem(http.StatusNotFound, "user", "POST", "/api/v1/sessions", sessionRequest("user", "mallory"))
	h.problem(http.StatusNotFound, "workspace", "POST", "/api/v1/sessions", sessionRequest("workspace", "nothing"))
	h.problem(http.StatusNotFound, "zone", "POST", "/api/v1/sessions", sessionRequest("zone", "mars"))
	if got := h.events.Find(events.TypeSessionRequested, ""); len(got) != 0 {
		t.Errorf("requests naming nothing were published: %d", len(got))
	}
}

func TestSessionRequestWithExistingRequestIDReturnsThatSession(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	s := h.insertSession(w, "req-7", sessions.Running, "")

	for _, call := range []struct {
		body obj
		opts []callOption
	}{
		{sessionRequest("request_id", "req-7"), nil},
		{sessionRequest(), []callOption{withHeader("Idempotency-Key", "req-7")}},
		{sessionRequest("request_id", "req-7"), []callOption{withHeader("Idempotency-Key", "req-7")}},
	} {
		var got obj
		h.must(http.StatusOK, "POST", "/api/v1/sessions", call.body, &got, call.opts...)
		if got.str("id") != s.ID || got.str("status") != "running" || got.str("user") != "alice" ||
			got.str("request_id") != "req-7" || got.str("workspace") != "demo" || got.str("zone") != "eu" || got["agent"] != nil {
			t.Errorf("got %v, want session %s", got, s.ID)
		}
	}
	h.create("users", obj{"username": "bob"})
	h.problem(http.StatusConflict, "user", "POST", "/api/v1/sessions", sessionRequest("user", "bob", "request_id", "req-7"))
	h.stagingZone("us")
	h.problem(http.StatusConflict, "zone", "POST", "/api/v1/sessions", sessionRequest("zone", "us", "request_id", "req-7"))
	if got := h.events.Find(events.TypeSessionRequested, ""); len(got) != 0 {
		t.Errorf("a repeated request was published again: %d", len(got))
	}
}

func TestRepeatedRequestForASessionInTheMakingWaitsForIt(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	s := h.insertSession(w, "req-8", sessions.Provisioning, "")

	// Not waiting: 202 with the session as it is.
	var accepted struct {
		RequestID string `json:"request_id"`
		Status    string `json:"status"`
		Session   obj    `json:"session"`
	}
	h.must(http.StatusAccepted, "POST", "/api/v1/sessions?wait=0", sessionRequest("request_id", "req-8"), &accepted)
	if accepted.RequestID != "req-8" || accepted.Status != "provisioning" || accepted.Session.str("id") != s.ID {
		t.Errorf("accepted %+v", accepted)
	}

	// Waiting: the first request's outcome answers this one too.
	answer := h.sendAsync("POST", "/api/v1/sessions?wait=30s", sessionRequest("request_id", "req-8"))
	h.waitUntilWaiting(1)
	url := "http://127.0.0.1:32768/"
	if _, err := sessions.Transition(context.Background(), h.deps.DB, s.ID, sessions.Provisioning, sessions.Running,
		sessions.Change{ContainerID: sessions.Ptr("c0ffee"), URL: &url}); err != nil {
		t.Fatal(err)
	}
	h.publish(events.TypeSessionReady, "req-8", events.SessionReady{RequestID: "req-8", SessionID: s.ID, User: "alice",
		Workspace: "demo", Zone: "eu", ContainerID: "c0ffee", URL: url, Origin: "on_demand"})
	res := h.answer(answer)
	if got := decodeAs[obj](t, res); res.Status != http.StatusOK || got.str("id") != s.ID || got.str("status") != "running" {
		t.Errorf("got %d %v, want 200 with the running session", res.Status, got)
	}
	if got := h.events.Find(events.TypeSessionRequested, ""); len(got) != 0 {
		t.Errorf("a repeated request was published again: %d", len(got))
	}
}

func TestSessionRequestWithoutWaitIsAcceptedAndOnTheBus(t *testing.T) {
	h := newHarness(t)
	h.world()
	var accepted obj
	h.must(http.StatusAccepted, "POST", "/api/v1/sessions?wait=0", sessionRequest(), &accepted, withHeader("Idempotency-Key", "key-1"))
	if accepted.str("request_id") != "key-1" || accepted.str("status") != "requested" || accepted["session"] != nil {
		t.Errorf("accepted: %v", accepted)
	}

	msg := nextEvent(t, h.streamConsumer(events.TypeSessionRequested))
	var req events.SessionRequested
	ev := h.decodeEvent(msg.Data(), &req)
	if req != (events.SessionRequested{RequestID: "key-1", User: "alice", Workspace: "demo", Zone: "eu"}) {
		t.Errorf("requested %+v", req)
	}
	if ev.ID != "key-1" || msg.Headers().Get(jetstream.MsgIDHeader) != "key-1" || msg.Headers().Get(events.HeaderRequestID) != "key-1" {
		t.Errorf("event id %s, Nats-Msg-Id %q, request header %q: all must be the request_id",
			ev.ID, msg.Headers().Get(jetstream.MsgIDHeader), msg.Headers().Get(events.HeaderRequestID))
	}

	// Without a request_id one is made up.
	h.must(http.StatusAccepted, "POST", "/api/v1/sessions?wait=0", sessionRequest(), &accepted)
	if _, err := uuid.Parse(accepted.str("request_id")); err != nil {
		t.Errorf("generated request_id %q", accepted.str("request_id"))
	}
}

// waitUntilWaiting waits until n session requests wait for their outcome.
func (h *harness) waitUntilWaiting(n int) {
	h.t.Helper()
	want := fmt.Sprintf("greenroom_session_request_waits %d\n", n)
	apptest.Eventually(h.t, 10*time.Second, want, func() bool {
		return strings.Contains(string(h.call("GET", "/metrics", nil).Body), want)
	})
}

// publish publishes an event as another service would.
func (h *harness) publish(eventType, requestID string, data any) {
	h.t.Helper()
	ev, err := events.New("greenroom/test", eventType, data)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.deps.Publisher.Publish(context.Background(), eventType, ev, requestID); err != nil {
		h.t.Fatal(err)
	}
}

// answerNextRequest plays the assigner for the next request on the bus:
// answer decides what to publish as its outcome.
func (h *harness) answerNextRequest(answer func(req events.SessionRequested) (subject string, data any)) {
	h.t.Helper()
	msg := nextEvent(h.t, h.streamConsumer(events.TypeSessionRequested))
	var req events.SessionRequested
	h.decodeEvent(msg.Data(), &req)
	subject, data := answer(req)
	h.publish(subject, req.RequestID, data)
}

func TestSessionRequestWithoutCapacityIsServiceUnavailable(t *testing.T) {
	h := newHarness(t)
	h.world()
	answer := h.sendAsync("POST", "/api/v1/sessions?wait=60s", sessionRequest())
	detail := "eu: staged: none for these permissions; on demand: agent-1 has 0.5 of 1 cores free"
	h.answerNextRequest(func(req events.SessionRequested) (string, any) {
		return events.TypeSessionFailed, events.SessionFailed{RequestID: req.RequestID, Reason: events.ReasonNoCapacity, Detail: detail}
	})
	res := h.answer(answer)
	p := decodeAs[problem](t, res)
	if res.Status != http.StatusServiceUnavailable || p.Detail != detail {
		t.Errorf("got %d %+v, want 503 with the failure's detail", res.Status, p)
	}
}

func TestSessionRequestThatFailsOtherwiseIsBadGateway(t *testing.T) {
	h := newHarness(t)
	h.world()
	answer := h.sendAsync("POST", "/api/v1/sessions", sessionRequest())
	h.answerNextRequest(func(req events.SessionRequested) (string, any) {
		return events.TypeSessionFailed, events.SessionFailed{RequestID: req.RequestID, Reason: events.ReasonProvisioningTimeout, Detail: "port 8080 did not answer within 30s"}
	})
	res := h.answer(answer)
	p := decodeAs[problem](t, res)
	if res.Status != http.StatusBadGateway || !strings.Contains(p.Detail, "provisioning_timeout") || !strings.Contains(p.Detail, "port 8080") {
		t.Errorf("got %d %+v, want 502 with the reason and detail", res.Status, p)
	}
}

func TestSessionRequestAnswersTheRunningSession(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	answer := h.sendAsync("POST", "/api/v1/sessions?wait=1m", sessionRequest())
	var made sessions.Session
	h.answerNextRequest(func(req events.SessionRequested) (string, any) {
		made = h.insertSession(w, req.RequestID, sessions.Running, "")
		return events.TypeSessionReady, events.SessionReady{RequestID: req.RequestID, SessionID: made.ID, User: req.User,
			Workspace: req.Workspace, Zone: req.Zone, ContainerID: made.ContainerID, URL: made.URL, Origin: made.Origin}
	})
	res := h.answer(answer)
	if res.Status != http.StatusCreated {
		t.Fatalf("got %d %s, want 201", res.Status, res.Body)
	}
	got := decodeAs[obj](t, res)
	if got.str("id") != made.ID || got.str("status") != "running" || got.str("user") != "alice" ||
		got.str("url") != made.URL || got.str("origin") != "on_demand" || got["staging_config_id"] != nil {
		t.Errorf("session %v", got)
	}
}

func TestSessionWaitElapsesIntoAcceptedWithTheSessionSoFar(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	answer := h.sendAsync("POST", "/api/v1/sessions?wait=2s", sessionRequest())
	msg := nextEvent(t, h.streamConsumer(events.TypeSessionRequested))
	var req events.SessionRequested
	h.decodeEvent(msg.Data(), &req)
	made := h.insertSession(w, req.RequestID, sessions.Provisioning, "") // and no outcome yet
	res := h.answer(answer)
	got := decodeAs[struct {
		RequestID string `json:"request_id"`
		Status    string `json:"status"`
		Session   obj    `json:"session"`
	}](t, res)
	if res.Status != http.StatusAccepted || got.RequestID != req.RequestID || got.Status != "provisioning" || got.Session.str("id") != made.ID {
		t.Errorf("got %d %+v, want 202 with the provisioning session", res.Status, got)
	}
}

func TestSessionWaitEndsInAcceptedWhenTheServiceStops(t *testing.T) {
	h := newHarness(t)
	h.world()
	ctx, stop := context.WithCancel(context.Background())
	if err := h.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	answer := h.sendAsync("POST", "/api/v1/sessions?wait=5m", sessionRequest("request_id", "slow-1"))
	nextEvent(t, h.streamConsumer(events.TypeSessionRequested)) // it is waiting now
	stop()
	<-h.svc.Stopped()
	res := h.answer(answer)
	got := decodeAs[obj](t, res)
	if res.Status != http.StatusAccepted || got.str("request_id") != "slow-1" || got.str("status") != "requested" {
		t.Errorf("got %d %v, want 202 requested", res.Status, got)
	}
}

func TestSessionDeleteAsksTheProvisionerToDestroyIt(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	h.relayOnce() // the world's config changes
	s := h.insertSession(w, "req-9", sessions.Running, "")

	var got obj
	h.must(http.StatusAccepted, "DELETE", "/api/v1/sessions/"+s.ID, nil, &got)
	if got.str("id") != s.ID || got.str("status") != "running" {
		t.Errorf("answer %v", got)
	}
	if after, err := sessions.Get(context.Background(), h.deps.DB, s.ID); err != nil || after.Status != sessions.Running {
		t.Errorf("the config service changed the session: %v %v", after.Status, err)
	}
	if n := h.relayOnce(); n != 1 {
		t.Fatalf("relay published %d events, want 1", n)
	}
	msg := nextEvent(t, h.streamConsumer(events.TypeSessionDestroy))
	var destroy events.SessionDestroy
	h.decodeEvent(msg.Data(), &destroy)
	if destroy != (events.SessionDestroy{SessionID: s.ID, Reason: "api"}) || msg.Headers().Get(events.HeaderRequestID) != "req-9" {
		t.Errorf("destroy %+v, request header %q", destroy, msg.Headers().Get(events.HeaderRequestID))
	}

	// A session already gone is answered as it is, and nothing is asked.
	gone := h.insertSession(w, "req-10", sessions.Running, "")
	ctx := context.Background()
	if _, err := sessions.Transition(ctx, h.deps.DB, gone.ID, sessions.Running, sessions.Destroying, sessions.Change{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.Transition(ctx, h.deps.DB, gone.ID, sessions.Destroying, sessions.Destroyed, sessions.Change{}); err != nil {
		t.Fatal(err)
	}
	h.must(http.StatusAccepted, "DELETE", "/api/v1/sessions/"+gone.ID, nil, &got)
	if got.str("status") != "destroyed" || got["destroyed_at"] == nil || h.outboxRows() != 0 {
		t.Errorf("destroyed session: %v, outbox %d", got, h.outboxRows())
	}
}
