package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/assigner/app"
	"github.com/greenroom-dev/greenroom/services/assigner/service"
)

// publishAsOtherClient publishes a request as a CloudEvents SDK or
// `nats pub` would: raw JSON on the subject, no Greenroom-Request-Id
// header, not checked by Greenroom's publisher. The recorder is told not to
// hold it to the writer's schema.
func (w *world) publishAsOtherClient(t *testing.T, raw string) {
	t.Helper()
	msg := nats.NewMsg(events.TypeSessionRequested)
	msg.Data = []byte(raw)
	msg.Header.Set(apptest.HeaderTestGarbage, "1")
	if err := w.nc.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
}

// requestJSON is a session request as JSON, changed by f first.
func requestJSON(t *testing.T, requestID string, f func(ev, data map[string]any)) string {
	t.Helper()
	data := map[string]any{"request_id": requestID, "user": "alice", "workspace": "demo", "zone": "zone-a"}
	ev := map[string]any{"specversion": "1.0", "id": uuid.NewString(), "source": "nats-cli",
		"type": events.TypeSessionRequested, "data": data}
	if f != nil {
		f(ev, data)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// A spec-valid CloudEvent without the optional attributes (time,
// dataschema, datacontenttype), and one with fields a newer writer added
// to the envelope and to data, are served (issue 15).
func TestSpecValidRequestsWithoutOptionalAttributesOrWithUnknownFieldsAreServed(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	staged := w.stage("zone-a")
	bare, newer := "bare-"+uuid.NewString(), "newer-"+uuid.NewString()
	w.publishAsOtherClient(t, requestJSON(t, bare, nil))
	w.publishAsOtherClient(t, requestJSON(t, newer, func(ev, data map[string]any) {
		ev["time"] = time.Now().UTC().Format(time.RFC3339Nano)
		ev["datacontenttype"] = "application/json; charset=utf-8"
		ev["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		ev["addedinv2"] = map[string]any{"nested": true}
		data["priority"] = "high"
		data["added_in_v2"] = map[string]any{"a": []any{1}}
	}))
	var claimed string
	for _, id := range []string{bare, newer} {
		got := w.rec.WaitAny(t, id, 10*time.Second, events.TypeSessionAssigned, events.TypeProvisionRequested, events.TypeSessionFailed)
		switch got.Subject {
		case events.TypeSessionAssigned:
			claimed = decode[events.SessionAssigned](t, got).SessionID
		case events.TypeProvisionRequested:
			w.onDemand(t, got, "none_staged")
		default:
			t.Fatalf("request %s: %s %s", id, got.Subject, got.Raw)
		}
	}
	if claimed != staged {
		t.Errorf("the staged session %s was not claimed by either request (claimed %q)", staged, claimed)
	}
	if dead := w.rec.Find(bus.DeadLetterSubject(service.ConsumerName), ""); len(dead) != 0 {
		t.Fatalf("dead-lettered: %s", dead[0].Raw)
	}
}

// A request whose request_id can be read but which is otherwise invalid is
// answered greenroom.session.failed, reason invalid_request, naming the
// field, instead of being dead-lettered in silence; its caller (here the
// client library, waiting on the request_id) hears it at once.
func TestInvalidRequestWithAReadableRequestIDFailsNamingTheField(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	cases := []struct {
		name  string
		f     func(ev, data map[string]any)
		field string
	}{
		{"missing user", func(_, d map[string]any) { delete(d, "user") }, "data.user"},
		{"user not a string", func(_, d map[string]any) { d["user"] = 42 }, "data.user"},
		{"empty zone", func(_, d map[string]any) { d["zone"] = "" }, "data.zone"},
		{"workspace as an object", func(_, d map[string]any) { d["workspace"] = map[string]any{"name": "demo"} }, "data.workspace"},
		{"time not a time", func(e, _ map[string]any) { e["time"] = "yesterday" }, "time"},
		{"data not JSON", func(e, _ map[string]any) { e["datacontenttype"] = "text/plain" }, "datacontenttype"},
		{"another contract", func(e, _ map[string]any) { e["dataschema"] = "urn:greenroom:schema:session.requested:2" }, "dataschema"},
		{"wrong specversion", func(e, _ map[string]any) { e["specversion"] = "0.3" }, "specversion"},
		{"missing source", func(e, _ map[string]any) { delete(e, "source") }, "source"},
		{"misspelt type", func(e, _ map[string]any) { e["type"] = "greenroom.session.requestd" }, "type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := "invalid-" + uuid.NewString()
			w.publishAsOtherClient(t, requestJSON(t, id, tc.f))
			got := w.rec.Wait(t, events.TypeSessionFailed, id, 10*time.Second)
			f := decode[events.SessionFailed](t, got)
			if f.Reason != events.ReasonInvalidRequest || f.RequestID != id || !strings.Contains(f.Detail, tc.field+": ") {
				t.Fatalf("failure %+v, want invalid_request naming %s", f, tc.field)
			}
		})
	}
	// A caller waiting on the request_id (the client library) hears it at
	// once, instead of waiting out its timeout.
	id := "invalid-waited-" + uuid.NewString()
	p := w.client.Expect(client.Request{RequestID: id})
	defer p.Close()
	w.publishAsOtherClient(t, requestJSON(t, id, func(_, d map[string]any) { delete(d, "user") }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.Wait(ctx)
	var failed *client.FailedError
	if !errors.As(err, &failed) || failed.Reason != events.ReasonInvalidRequest || !strings.Contains(failed.Detail, "data.user") {
		t.Fatalf("the waiting caller got %v, want invalid_request naming data.user", err)
	}
	if dead := w.rec.Find(bus.DeadLetterSubject(service.ConsumerName), ""); len(dead) != 0 {
		t.Fatalf("an answered request was also dead-lettered: %s", dead[0].Raw)
	}
	var n int
	if err := w.db.Get(&n, `SELECT count(*) FROM sessions WHERE request_id LIKE 'invalid-%'`); err != nil || n != 0 {
		t.Fatalf("%d sessions for invalid requests (%v)", n, err)
	}
}

// A request without a readable request_id cannot be answered: it is
// dead-lettered, and the next request is still served.
func TestRequestWithoutAReadableRequestIDIsDeadLettered(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	for _, raw := range []string{
		requestJSON(t, "", nil),
		requestJSON(t, "x", func(_, d map[string]any) { d["request_id"] = 42 }),
		requestJSON(t, "x", func(_, d map[string]any) { d["request_id"] = strings.Repeat("r", events.RequestIDMaxLength+1) }),
	} {
		w.publishAsOtherClient(t, raw)
	}
	apptest.Eventually(t, 10*time.Second, "three dead letters", func() bool {
		return len(w.rec.Find(bus.DeadLetterSubject(service.ConsumerName), "")) == 3
	})
	if failed := w.rec.Find(events.TypeSessionFailed, ""); len(failed) != 0 {
		t.Fatalf("answered a request without a readable request_id: %s", failed[0].Raw)
	}
	if _, got := w.request(t, "alice", "zone-a"); got.Subject != events.TypeProvisionRequested {
		t.Fatalf("the next request: %s", got.Subject)
	}
}

// Requests older than GREENROOM_REQUEST_MAX_AGE are answered expired and
// never served, judged by their CloudEvents time or, without one, by when
// the stream stored them; a replayed request that was served long ago is
// not announced again. The assigner's clock runs an hour ahead, so that
// every request it reads is an hour old.
func TestRequestsOlderThanTheMaxAgeAreAnsweredExpiredAndNeverServed(t *testing.T) {
	w := newWorldWith(t, service.Config{RequestMaxAge: 5 * time.Minute,
		Now: func() time.Time { return time.Now().Add(time.Hour) }})
	w.user("alice", w.group)
	staged := w.stage("zone-a")
	withTime, withoutTime := "old-"+uuid.NewString(), "old-bare-"+uuid.NewString()
	if _, _, err := w.client.Publish(context.Background(), client.Request{RequestID: withTime, User: "alice", Workspace: "demo", Zone: "zone-a"}); err != nil {
		t.Fatal(err)
	}
	w.publishAsOtherClient(t, requestJSON(t, withoutTime, nil))
	for _, id := range []string{withTime, withoutTime} {
		got := w.rec.WaitAny(t, id, 10*time.Second, events.TypeSessionAssigned, events.TypeProvisionRequested, events.TypeSessionFailed)
		if got.Subject != events.TypeSessionFailed {
			t.Fatalf("request %s was served: %s", id, got.Subject)
		}
		f := decode[events.SessionFailed](t, got)
		if f.Reason != events.ReasonExpired || f.RequestID != id || !strings.Contains(f.Detail, "5m0s") {
			t.Fatalf("failure %+v, want expired naming the maximum age", f)
		}
	}
	var status string
	if err := w.db.Get(&status, `SELECT status FROM sessions WHERE id = $1`, staged); err != nil || status != "staged" {
		t.Fatalf("the staged session is %q (%v), want still staged", status, err)
	}
	var n int
	if err := w.db.Get(&n, `SELECT count(*) FROM sessions WHERE request_id IN ($1, $2)`, withTime, withoutTime); err != nil || n != 0 {
		t.Fatalf("%d sessions for expired requests (%v)", n, err)
	}
	expired := func() float64 {
		v, _ := apptest.Metric(t, w.reg, "greenroom_assigner_requests_total", map[string]string{"outcome": string(app.OutcomeExpired)})
		return v
	}
	if v := expired(); v != 2 {
		t.Fatalf("expired requests counted %v, want 2", v)
	}

	// A replay of a request served long ago (a recreated consumer reading
	// the stream from its start): its session exists; nothing is announced.
	served := "served-" + uuid.NewString()
	w.db.MustExec(`UPDATE sessions SET request_id = $1, user_id = (SELECT id FROM users WHERE username = 'alice'), status = 'running'
		WHERE id = $2`, served, staged)
	w.publishAsOtherClient(t, requestJSON(t, served, nil))
	apptest.Eventually(t, 10*time.Second, "the replay handled", func() bool { return expired() == 3 })
	if got := w.rec.Find(events.TypeSessionFailed, served); len(got) != 0 {
		t.Fatalf("a replay of a served request was announced: %s", got[0].Raw)
	}
}
