package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/stream"
)

// fakeGreenroom stands in for the assigner and provisioner: it answers each
// greenroom.session.requested on the embedded JetStream with the outcome
// decide returns, and records the requests it saw.
type fakeGreenroom struct {
	t      *testing.T
	url    string
	mu     sync.Mutex
	seen   []events.SessionRequested
	source string
}

func startFakeGreenroom(t *testing.T, decide func(events.SessionRequested) (eventType string, data any)) *fakeGreenroom {
	t.Helper()
	srv, nc := natstest.Connect(t)
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Apply(ctx, js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	v, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPublisher(js, v)
	f := &fakeGreenroom{t: t, url: srv.ClientURL()}
	if decide == nil {
		return f
	}
	// Handlers still answering when the test ends must finish before the
	// connection closes (and before the test may no longer report).
	var (
		mu       sync.Mutex
		stopped  bool
		inflight sync.WaitGroup
	)
	sub, err := nc.Subscribe(events.TypeSessionRequested, func(m *nats.Msg) {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		inflight.Add(1)
		mu.Unlock()
		defer inflight.Done()
		if err := v.Validate(m.Data); err != nil {
			t.Errorf("the CLI published an invalid request: %v", err)
			return
		}
		ev, err := events.Decode(m.Data)
		if err != nil {
			t.Error(err)
			return
		}
		var req events.SessionRequested
		if err := ev.DecodeData(&req); err != nil {
			t.Error(err)
			return
		}
		if ev.ID != req.RequestID || m.Header.Get(events.HeaderRequestID) != req.RequestID {
			t.Errorf("request %s published with event id %s and header %q; want both equal to the request id",
				req.RequestID, ev.ID, m.Header.Get(events.HeaderRequestID))
		}
		f.mu.Lock()
		f.seen = append(f.seen, req)
		f.source = ev.Source
		f.mu.Unlock()
		typ, data := decide(req)
		out, err := events.New("greenroom/test", typ, data)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := pub.Publish(ctx, typ, out, req.RequestID); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		_ = sub.Unsubscribe()
		inflight.Wait()
	})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeGreenroom) requests() []events.SessionRequested {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.SessionRequested(nil), f.seen...)
}

func readyFor(req events.SessionRequested) (string, any) {
	return events.TypeSessionReady, events.SessionReady{
		RequestID: req.RequestID, SessionID: "0192f3a4-5b6c-7d8e-9f01-23456789abcd",
		User: req.User, Workspace: req.Workspace, Zone: req.Zone, Agent: "agent-zone-a",
		ContainerID: "3f2a9c0b1d2e4f5a6b7c8d9e", URL: "http://127.0.0.1:32768/", Origin: "staged",
	}
}

func TestRequestPrintsTheReadySession(t *testing.T) {
	f := startFakeGreenroom(t, readyFor)
	out, errOut, code := runCLI(t, map[string]string{"GREENROOM_NATS_URL": f.url},
		"request", "--user", "alice", "--workspace", "demo", "--zone", "zone-a", "--request-id", "ticket-42")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{
		"session    0192f3a4-5b6c-7d8e-9f01-23456789abcd",
		"origin     staged",
		"url        http://127.0.0.1:32768/",
		"container  3f2a9c0b1d2e\n",
		"request    ticket-42",
		" ms (request published → session ready)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0] != (events.SessionRequested{RequestID: "ticket-42", User: "alice", Workspace: "demo", Zone: "zone-a"}) {
		t.Errorf("requests published: %+v", reqs)
	}
	if f.source != "greenroom/cli" {
		t.Errorf("request source %q, want greenroom/cli", f.source)
	}
}

func TestRequestJSONCarriesElapsedMilliseconds(t *testing.T) {
	f := startFakeGreenroom(t, readyFor)
	out, errOut, code := runCLI(t, nil, "--nats-url", f.url,
		"request", "--user", "bob", "--workspace", "demo", "--zone", "zone-b", "--json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var res requestResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if res.Status != "ready" || res.SessionID == "" || res.Origin != "staged" || res.URL == "" || res.User != "bob" {
		t.Errorf("result = %+v", res)
	}
	if res.RequestID == "" || len(f.requests()) != 1 || f.requests()[0].RequestID != res.RequestID {
		t.Errorf("generated request id %q not the one published (%+v)", res.RequestID, f.requests())
	}
	if res.ElapsedMS <= 0 || res.ElapsedMS > 30000 {
		t.Errorf("elapsed_ms = %v", res.ElapsedMS)
	}
}

func TestRequestFailureExitsNonZeroWithTheReason(t *testing.T) {
	f := startFakeGreenroom(t, func(req events.SessionRequested) (string, any) {
		return events.TypeSessionFailed, events.SessionFailed{
			RequestID: req.RequestID, Reason: events.ReasonNoCapacity,
			Detail: "zone-a: no agent with 0.25 free cores; zone-b: no agent with 0.25 free cores",
		}
	})
	out, errOut, code := runCLI(t, map[string]string{"GREENROOM_NATS_URL": f.url},
		"request", "--user", "alice", "--workspace", "demo", "--zone", "zone-a", "--request-id", "r-fail")
	if code != exitFailure {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut, "request r-fail failed: no_capacity: zone-a: no agent") || out != "" {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}

	out, _, code = runCLI(t, map[string]string{"GREENROOM_NATS_URL": f.url},
		"request", "--user", "alice", "--workspace", "demo", "--zone", "zone-a", "--json")
	var res requestResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitFailure {
		t.Fatalf("exit %d, output %q (%v)", code, out, err)
	}
	if res.Status != "failed" || res.Reason != events.ReasonNoCapacity || res.Detail == "" {
		t.Errorf("result = %+v", res)
	}
}

func TestRequestTimesOutWhenNobodyAnswers(t *testing.T) {
	f := startFakeGreenroom(t, nil)
	start := time.Now()
	_, errOut, code := runCLI(t, map[string]string{"GREENROOM_NATS_URL": f.url},
		"request", "--user", "alice", "--workspace", "demo", "--zone", "zone-a", "--request-id", "r-slow", "--timeout", "300ms")
	if code != exitFailure || !strings.Contains(errOut, "no outcome within 300ms") || !strings.Contains(errOut, "--request-id r-slow") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s", took)
	}
}

func TestRequestWithoutNATSSaysSo(t *testing.T) {
	_, errOut, code := runCLI(t, nil, "--nats-url", "nats://127.0.0.1:1",
		"request", "--user", "alice", "--workspace", "demo", "--zone", "zone-a")
	if code != exitFailure || !strings.Contains(errOut, "connecting to NATS at nats://127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
