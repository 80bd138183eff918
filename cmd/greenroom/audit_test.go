package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/audit/audittest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
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
	out, errOut, code := runCLI(t, map[string]string{"GREENROOM_NATS_URL": a.url}, "audit", "replay", "--events", "--since", "10m")
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
		"audit", "replay", "--events", "--since", "1h", "--request-id", "r1", "--json")
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
	out, _, code := runCLI(t, env, "audit", "replay", "--events", "--since", "1h", "--until", cut.Format(time.RFC3339Nano), "--json")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"request_id":"early"`) {
		t.Errorf("--until: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, env, "audit", "replay", "--events", "--since", "1h", "--subject", "greenroom.dead.>", "--json")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"subject":"greenroom.dead.assigner"`) {
		t.Errorf("--subject: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, env, "audit", "replay", "--events", "--since", "1h", "--subject", "greenroom.nothing")
	if code != exitOK || !strings.HasPrefix(out, "(no events on greenroom.nothing between") {
		t.Errorf("empty range: exit %d\n%s", code, out)
	}
}

func TestAuditReplayWithoutTheStreamSaysSo(t *testing.T) {
	srv := natstest.Start(t)
	_, errOut, code := runCLI(t, map[string]string{"GREENROOM_NATS_URL": srv.ClientURL()}, "audit", "replay", "--events")
	if code != exitFailure || !strings.Contains(errOut, "stream GREENROOM does not exist yet") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

// replay without --events rebuilds the story and counts it; timeline
// follows one request through it, as a table and as JSON.
func TestAuditReplaySummarisesAndTimelineFollowsARequest(t *testing.T) {
	a := newAuditStream(t)
	a.story()
	env := map[string]string{"GREENROOM_NATS_URL": a.url}
	out, errOut, code := runCLI(t, env, "audit", "replay", "--since", "10m", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var sm audit.Summary
	if err := json.Unmarshal([]byte(out), &sm); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if sm.Events != 3 || sm.Requests != 1 || sm.Ready != 1 || sm.ConfigChanges["zone create"] != 1 || sm.SessionsByStatus["running"] != 1 {
		t.Errorf("summary %+v", sm)
	}
	out, _, code = runCLI(t, env, "audit", "replay", "--since", "10m")
	if code != exitOK || !strings.Contains(out, "requests") || !strings.Contains(out, "(ready 1, failed 0, no outcome yet 0)") {
		t.Errorf("summary table (exit %d):\n%s", code, out)
	}

	out, _, code = runCLI(t, env, "audit", "timeline", "--request", "r1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "TIME SEQ EVENT SESSION REQUEST WHAT" {
		t.Fatalf("timeline of r1 (exit %d):\n%s", code, out)
	}
	if !strings.Contains(lines[1], "session.requested") || !strings.Contains(lines[1], "alice asks for demo in zone-a") ||
		!strings.Contains(lines[2], "session.ready") || !strings.Contains(lines[2], "ready for alice on agent-zone-a in zone-a (staged)") {
		t.Errorf("timeline of r1:\n%s", out)
	}
	out, _, code = runCLI(t, env, "audit", "timeline", "--session", "0192f3a4-0000-7000-8000-000000000001", "--json")
	var entries []audit.Entry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || code != exitOK || len(entries) != 2 || entries[0].Seq != 1 || entries[1].Seq != 3 {
		t.Errorf("timeline of the session as JSON (exit %d, %v): %s", code, err, out)
	}
	out, _, code = runCLI(t, env, "audit", "timeline", "--user", "nobody")
	if code != exitOK || !strings.Contains(out, "no events about user nobody") {
		t.Errorf("timeline of nobody (exit %d): %s", code, out)
	}
}

// verify names an event removed from the stream and one altered after
// they were checkpointed, and exits 1; before the tampering it agrees.
func TestAuditVerifyNamesAnEventRemovedAndOneAltered(t *testing.T) {
	ctx := context.Background()
	a := newAuditStream(t)
	conn, dbURL := dbtest.New(t)
	for i := range 30 {
		a.publish(events.TypeSessionRequested, events.TypeSessionRequested,
			events.SessionRequested{RequestID: fmt.Sprint("r", i), User: "alice", Workspace: "demo", Zone: "zone-a"}, "")
	}
	js, err := jetstream.New(a.nc)
	if err != nil {
		t.Fatal(err)
	}
	n := audit.NewNotary(audit.NotaryConfig{Source: "greenroom/test"}, conn, js, zap.NewNop())
	if cp, _, err := n.RunOnce(ctx); err != nil || cp.Events != 30 {
		t.Fatalf("checkpoint %+v: %v", cp, err)
	}
	env := map[string]string{"GREENROOM_NATS_URL": a.url, "GREENROOM_DATABASE_URL": dbURL}
	out, errOut, code := runCLI(t, env, "audit", "verify")
	if code != exitOK || !strings.Contains(out, "agree") || !strings.Contains(out, "checkpoints: 1 covering 30 events") {
		t.Fatalf("verify of the untouched log (exit %d): %s%s", code, out, errOut)
	}

	audittest.Rebuild(t, js, []uint64{10}, map[uint64][2]string{25: {`"alice"`, `"mallory"`}})
	out, errOut, code = runCLI(t, env, "audit", "verify")
	for _, want := range []string{"tampered: stream: the stream was recreated", "tampered: removed at seq 10:", "tampered: altered at seq 24:",
		"0 difference(s) with PostgreSQL, 3 in the log's checkpoints"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify of the tampered log lacks %q", want)
		}
	}
	if code != 1 {
		t.Errorf("verify of the tampered log: exit %d, want 1:\n%s%s", code, out, errOut)
	}
	var res verifyResult
	out, _, _ = runCLI(t, env, "audit", "verify", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Agree || len(res.Chain.Findings) != 3 || res.Chain.Covered != 28 {
		t.Errorf("verify --json of the tampered log (%v): %s", err, out)
	}
}
