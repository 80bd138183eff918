package main

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/stream"
)

// auditStream is an embedded JetStream with the GREENROOM stream.
type auditStream struct {
	t   *testing.T
	url string
	nc  *nats.Conn
	pub *bus.Publisher
}

func newAuditStream(t *testing.T) *auditStream {
	srv, nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Apply(context.Background(), js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	return &auditStream{t: t, url: srv.ClientURL(), nc: nc, pub: bus.NewPublisher(js, nil)}
}

func (a *auditStream) publish(subject, eventType string, data any, requestID string) {
	a.t.Helper()
	ev, err := events.New("greenroom/test", eventType, data)
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.pub.Publish(context.Background(), subject, ev, requestID); err != nil {
		a.t.Fatal(err)
	}
}

// story publishes one request's life plus an unrelated event, in order.
func (a *auditStream) story() {
	a.publish("greenroom.session.requested", events.TypeSessionRequested,
		events.SessionRequested{RequestID: "r1", User: "alice", Workspace: "demo", Zone: "zone-a"}, "r1")
	a.publish("greenroom.config.changed.zone", events.TypeConfigChanged,
		events.ConfigChanged{Kind: "zone", Op: "create", ID: "0192f3a4-0000-7000-8000-0000000000aa", Name: "zone-b"}, "")
	a.publish("greenroom.session.ready", events.TypeSessionReady, events.SessionReady{
		RequestID: "r1", SessionID: "0192f3a4-0000-7000-8000-000000000001", User: "alice", Workspace: "demo",
		Zone: "zone-a", Agent: "agent-zone-a", ContainerID: "c1", URL: "http://127.0.0.1:32768/", Origin: "staged",
	}, "r1")
}

func TestAuditReplayPrintsEventsInStreamOrderAndStops(t *testing.T) {
	a := newAuditStream(t)
	a.story()
	out, errOut, code := runCLI(t, map[string]string{"GREENROOM_NATS_URL": a.url}, "audit", "replay", "--since", "10m")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("want a header and 3 events:\n%s", out)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "TIME SEQ SUBJECT TYPE REQUEST_ID DATA" {
		t.Errorf("header %q", lines[0])
	}
	for i, want := range []string{
		"1 greenroom.session.requested greenroom.session.requested r1",
		"2 greenroom.config.changed.zone greenroom.config.changed -",
		"3 greenroom.session.ready greenroom.session.ready r1",
	} {
		if got := strings.Join(strings.Fields(lines[i+1])[1:5], " "); got != want {
			t.Errorf("line %d: SEQ SUBJECT TYPE REQUEST_ID = %q, want %q", i+1, got, want)
		}
	}
	if !strings.Contains(lines[1], `{"request_id":"r1","user":"alice","workspace":"demo","zone":"zone-a"}`) {
		t.Errorf("data of the request: %q", lines[1])
	}
	ts := strings.Fields(lines[1])[0]
	if _, err := time.Parse(time.RFC3339, ts); err != nil {
		t.Errorf("time column %q: %v", ts, err)
	}
}

func TestAuditReplayFollowsOneRequestAsJSON(t *testing.T) {
	a := newAuditStream(t)
	a.story()
	out, errOut, code := runCLI(t, map[string]string{"GREENROOM_NATS_URL": a.url},
		"audit", "replay", "--since", "1h", "--request-id", "r1", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []auditEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e auditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].Type != events.TypeSessionRequested || got[1].Type != events.TypeSessionReady ||
		got[0].StreamSeq != 1 || got[1].StreamSeq != 3 || got[0].RequestID != "r1" || got[1].ID == "" {
		t.Fatalf("entries: %+v", got)
	}
	var ready events.SessionReady
	if err := json.Unmarshal(got[1].Data, &ready); err != nil || ready.URL != "http://127.0.0.1:32768/" {
		t.Errorf("full data not kept: %s (%v)", got[1].Data, err)
	}
}

func TestAuditReplayHonoursSubjectAndUntil(t *testing.T) {
	a := newAuditStream(t)
	a.publish("greenroom.session.requested", events.TypeSessionRequested,
		events.SessionRequested{RequestID: "early", User: "alice", Workspace: "demo", Zone: "zone-a"}, "early")
	// The stream stamps messages with the server's clock, which is this
	// machine's: a cut-off taken between two publishes separates them.
	cut := time.Now()
	a.publish("greenroom.session.requested", events.TypeSessionRequested,
		events.SessionRequested{RequestID: "late", User: "bob", Workspace: "demo", Zone: "zone-a"}, "late")
	a.publish("greenroom.dead.assigner", events.TypeDeadLetter, events.DeadLetter{
		Consumer: "assigner", StreamSequence: 1, Subject: "greenroom.session.requested", NumDelivered: 5, Reason: "boom", Payload: "{}",
	}, "")

	env := map[string]string{"GREENROOM_NATS_URL": a.url}
	out, _, code := runCLI(t, env, "audit", "replay", "--since", "1h", "--until", cut.Format(time.RFC3339Nano), "--json")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"request_id":"early"`) {
		t.Errorf("--until: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, env, "audit", "replay", "--since", "1h", "--subject", "greenroom.dead.>", "--json")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"subject":"greenroom.dead.assigner"`) {
		t.Errorf("--subject: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, env, "audit", "replay", "--since", "1h", "--subject", "greenroom.nothing")
	if code != exitOK || !strings.HasPrefix(out, "(no events on greenroom.nothing between") {
		t.Errorf("empty range: exit %d\n%s", code, out)
	}
}

func TestAuditReplayWithoutTheStreamSaysSo(t *testing.T) {
	srv := natstest.Start(t)
	_, errOut, code := runCLI(t, map[string]string{"GREENROOM_NATS_URL": srv.ClientURL()}, "audit", "replay")
	if code != exitFailure || !strings.Contains(errOut, "stream GREENROOM does not exist yet") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}
