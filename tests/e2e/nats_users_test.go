package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natsauth"
)

// violations collects the permission errors the server sends a connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

func (v *violations) list() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.errs...)
}

func (v *violations) has(substr string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range v.errs {
		if strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

// connectAs connects to env's NATS server as user, with the user's inbox
// prefix, recording the permission violations the server reports.
func connectAs(t *testing.T, env *apptest.Env, user string) (*nats.Conn, *violations) {
	t.Helper()
	v := &violations{}
	nc, err := nats.Connect(env.NatsURL(user), append(natsauth.ConnectOptions(env.NatsURL(user)), nats.ErrorHandler(v.handler))...)
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

// TestEachServiceHasItsOwnNATSUser runs a whole deployment on a NATS
// server that knows only natsauth's users, each service connected as its
// own: sessions are served through the API, through the gateway's
// dashboard (the gateway is requester "gateway") and to a requesting
// service on its own subjects, while the assigner cannot publish
// configuration changes and one requesting service can neither read
// another's outcomes (live or from the stream) nor ask in its name.
func TestEachServiceHasItsOwnNATSUser(t *testing.T) {
	env := apptest.NewWithUsers(t, "billing", "reports")
	g := startIn(t, env)
	g.gatewayWorld(t)
	// Through the API (the config service asks on the unqualified
	// subject): a staged session, then an on-demand one.
	for _, user := range []string{"alice", "alice"} {
		s, _ := g.session(t, user, "demo", "zone-a")
		if s["status"] != "running" {
			t.Fatalf("session over the API: %v", s)
		}
	}

	// The gateway is a requester too: a launch from alice's dashboard is
	// served on its subjects, and ending it goes through the bus.
	alice := g.user(t)
	if code := signInAt(t, alice, g.onDomain(t, ""), "alice", "alice-secret-pw"); code != http.StatusSeeOther {
		t.Fatalf("alice's sign-in at the gateway: %d", code)
	}
	res, err := alice.PostForm(g.onDomain(t, "/launch"), url.Values{"workspace": {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	launched := strings.TrimSuffix(strings.TrimPrefix(res.Header.Get("Location"), "/session/"), "/")
	if res.StatusCode != http.StatusSeeOther || launched == "" {
		t.Fatalf("launch from the dashboard: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var launchedBy string
	if err := env.DB.Get(&launchedBy, `SELECT requester FROM sessions WHERE id = $1`, launched); err != nil || launchedBy != "gateway" {
		t.Errorf("the launched session's requester is %q (%v), want gateway", launchedBy, err)
	}
	if res, err := alice.PostForm(g.onDomain(t, "/sessions/"+launched+"/end"), nil); err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("ending the launched session: %v %v", res, err)
	}
	apptest.Eventually(t, 60*time.Second, "the launched session destroyed", func() bool {
		var status string
		_ = env.DB.Get(&status, `SELECT status FROM sessions WHERE id = $1`, launched)
		return status == "destroyed"
	})

	// The config service's audit notary, as the config user, reads the
	// whole stream and announces its checkpoints.
	apptest.Eventually(t, 30*time.Second, "a checkpoint of the audit log in PostgreSQL and in the stream", func() bool {
		var n int
		if err := env.DB.Get(&n, `SELECT count(*) FROM audit_checkpoints`); err != nil || n == 0 {
			return false
		}
		s, err := g.deps.JS.Stream(t.Context(), bus.StreamName)
		if err != nil {
			return false
		}
		info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(audit.TypeCheckpoint))
		return err == nil && info.State.Subjects[audit.TypeCheckpoint] > 0
	})

	// A requesting service with its own user, on its own subjects.
	billingNC, billingViolations := connectAs(t, env, "billing")
	billing, err := client.New(billingNC, client.WithSource("billing"), client.WithRequester("billing"))
	if err != nil {
		t.Fatal(err)
	}
	defer billing.Close()
	reportsNC, reportsViolations := connectAs(t, env, "reports")
	var overheard []string
	var mu sync.Mutex
	for _, subject := range []string{"greenroom.session.ready.billing", "greenroom.session.failed.billing", "greenroom.session.ready", "greenroom.>"} {
		if _, err := reportsNC.Subscribe(subject, func(m *nats.Msg) {
			mu.Lock()
			overheard = append(overheard, m.Subject)
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	_ = reportsNC.Flush()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	requestID := uuid.NewString()
	s, err := billing.Request(ctx, client.Request{RequestID: requestID, User: "bob", Workspace: "demo", Zone: "zone-a"})
	if err != nil {
		t.Fatalf("billing's request: %v", err)
	}
	if s.User != "bob" || s.URL == "" || s.SessionID == "" {
		t.Fatalf("billing's session: %+v", s)
	}
	var requester string
	if err := env.DB.Get(&requester, `SELECT requester FROM sessions WHERE request_id = $1`, requestID); err != nil || requester != "billing" {
		t.Errorf("the session's requester is %q (%v), want billing", requester, err)
	}
	// billing reads its own outcome back from the stream too.
	again, err := billing.Await(ctx, requestID, time.Hour)
	if err != nil || again.SessionID != s.SessionID {
		t.Errorf("billing looking back at its outcome: %+v, %v", again, err)
	}
	if errs := billingViolations.list(); len(errs) > 0 {
		t.Errorf("billing's own requests met permission errors: %v", errs)
	}

	// reports heard none of it, and the server said why.
	_ = reportsNC.Flush()
	mu.Lock()
	if len(overheard) > 0 {
		t.Errorf("reports overheard %v", overheard)
	}
	mu.Unlock()
	apptest.Eventually(t, 10*time.Second, "the server refusing reports' subscriptions", func() bool {
		return reportsViolations.has(`Permissions Violation for Subscription to "greenroom.session.ready.billing"`) &&
			reportsViolations.has(`Permissions Violation for Subscription to "greenroom.>"`)
	})
	// ... nor from the stream: no consumer on billing's outcomes.
	reportsJS, err := jetstream.New(reportsNC)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := reportsJS.OrderedConsumer(sctx, bus.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"greenroom.session.ready.billing"},
	}); err == nil {
		t.Errorf("reports made a consumer of billing's outcomes")
	}
	// ... nor read or take the assigner's requests from its durable
	// consumer.
	if _, err := reportsJS.Consumer(sctx, bus.StreamName, "assigner"); err == nil {
		t.Errorf("reports reached the assigner's consumer")
	}
	// ... nor take it over by updating it with a filter of its own.
	if _, err := reportsJS.CreateOrUpdateConsumer(sctx, bus.StreamName, jetstream.ConsumerConfig{
		Durable: "assigner", FilterSubject: "greenroom.session.ready.reports", AckPolicy: jetstream.AckExplicitPolicy,
	}); err == nil {
		t.Errorf("reports changed the assigner's consumer")
	}
	scancel()
	// ... nor hear of billing's session by repeating its request_id: the
	// repeat is refused, on reports' own subject.
	reports, err := client.New(reportsNC, client.WithSource("reports"), client.WithRequester("reports"))
	if err != nil {
		t.Fatal(err)
	}
	defer reports.Close()
	_, err = reports.Request(ctx, client.Request{RequestID: requestID, User: "bob", Workspace: "demo", Zone: "zone-a"})
	var failed *client.FailedError
	if !errors.As(err, &failed) || failed.Reason != events.ReasonRequestConflict || strings.Contains(failed.Detail, s.SessionID) {
		t.Errorf("reports repeating billing's request_id: %v, want a request_conflict that names no session", err)
	}
	// ... nor ask in billing's name, or on the unqualified subject.
	reportsPub := bus.NewPublisher(reportsJS, nil)
	for _, subject := range []string{"greenroom.session.requested.billing", events.TypeSessionRequested} {
		ev, err := events.NewWithID(uuid.NewString(), "reports", events.TypeSessionRequested,
			events.SessionRequested{RequestID: uuid.NewString(), User: "bob", Workspace: "demo", Zone: "zone-a"})
		if err != nil {
			t.Fatal(err)
		}
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		if _, err := reportsPub.Publish(pctx, subject, ev, ""); err == nil {
			t.Errorf("reports published a request on %s", subject)
		}
		pcancel()
	}

	// The assigner cannot announce a configuration change.
	assignerNC, assignerViolations := connectAs(t, env, "assigner")
	assignerJS, err := jetstream.New(assignerNC)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.New("greenroom/assigner", events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", ID: uuid.NewString(), Op: "updated", Name: "zone-a"})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	if _, err := bus.NewPublisher(assignerJS, nil).Publish(pctx, "greenroom.config.changed.zone", ev, ""); err == nil {
		t.Errorf("the assigner published greenroom.config.changed.zone")
	}
	apptest.Eventually(t, 10*time.Second, "the server refusing the assigner's publish", func() bool {
		return assignerViolations.has(`Permissions Violation for Publish to "greenroom.config.changed.zone"`)
	})
	// Nothing of it reached the stream: the last zone change in it is the
	// config service's own (an operator reads it; no service may).
	adminNC, _ := connectAs(t, env, natsauth.Admin)
	adminJS, err := jetstream.New(adminNC)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := adminJS.Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, "greenroom.config.changed.zone")
	if err != nil {
		t.Fatalf("reading the last zone change: %v", err)
	}
	if strings.Contains(string(last.Data), ev.ID) || !strings.Contains(string(last.Data), "greenroom/config") {
		t.Errorf("the last zone change in the stream is not the config service's: %s", last.Data)
	}
	// And the API still answers as ever.
	if status, _ := g.call(http.MethodGet, "/api/v1/sessions?user=bob", nil); status != http.StatusOK {
		t.Errorf("listing bob's sessions: %d", status)
	}
}
