package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/assigner/service"
)

// world is a running assigner over a small configuration: zones a
// (searches alternates) and b (does not), workspace demo, a group with
// every permission on, and staging configs for demo in both zones with
// every permission on.
type world struct {
	t      *testing.T
	db     *sqlx.DB
	nc     *nats.Conn
	rec    *apptest.Recorder
	client *client.Client
	pub    *bus.Publisher
	zone   map[string]string
	ws     string
	cfg    map[string]string
	group  string
	// reg is the assigner's metrics registry (deps.Ops.Registry).
	reg *prometheus.Registry
}

func newWorld(t *testing.T) *world { return newWorldWith(t, service.Config{}) }

// newWorldWith is newWorld with an assigner configured by cfg.
func newWorldWith(t *testing.T, cfg service.Config) *world {
	env := apptest.New(t)
	deps := env.Deps(t, "assigner")
	w := &world{t: t, db: env.DB, nc: deps.NC, pub: deps.Publisher, zone: map[string]string{}, cfg: map[string]string{},
		reg: deps.Ops.Registry}
	w.rec = apptest.NewRecorder(t, deps.NC)
	for _, z := range []struct {
		name   string
		search bool
		prio   int
	}{{"zone-a", true, 1}, {"zone-b", false, 2}} {
		id := uuid.NewString()
		env.DB.MustExec(`INSERT INTO zones (id, name, search_alternate_zones, priority, allow_origin_domain, upstream_auth_address)
			VALUES ($1, $2, $3, $4, 'example.test', 'example.test')`, id, z.name, z.search, z.prio)
		w.zone[z.name] = id
	}
	w.ws = uuid.NewString()
	env.DB.MustExec(`INSERT INTO workspaces (id, name, image, cores, memory_mb) VALUES ($1, 'demo', 'img', 0.5, 128)`, w.ws)
	w.group = uuid.NewString()
	env.DB.MustExec(`INSERT INTO groups (id, name, priority) VALUES ($1, 'everyone', 100)`, w.group)
	for zone, zid := range w.zone {
		id := uuid.NewString()
		env.DB.MustExec(`INSERT INTO staging_configs (id, zone_id, workspace_id, desired_sessions, allow_audio, allow_clipboard_down,
			allow_clipboard_up, allow_downloads, allow_microphone, allow_uploads, allow_gamepad)
			VALUES ($1, $2, $3, 1, true, true, true, true, true, true, true)`, id, zid, w.ws)
		w.cfg[zone] = id
	}
	svc, err := service.New(deps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, svc)
	w.client, err = client.New(deps.NC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.client.Close)
	return w
}

func (w *world) user(name string, groups ...string) {
	id := uuid.NewString()
	w.db.MustExec(`INSERT INTO users (id, username) VALUES ($1, $2)`, id, name)
	for _, g := range groups {
		w.db.MustExec(`INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)`, id, g)
	}
}

func (w *world) stage(zone string) string {
	ctx := context.Background()
	all := events.Permissions{AllowAudio: true, AllowClipboardDown: true, AllowClipboardUp: true, AllowDownloads: true,
		AllowMicrophone: true, AllowUploads: true, AllowGamepad: true}
	s, err := sessions.Insert(ctx, w.db, sessions.New{ID: uuid.NewString(), WorkspaceID: w.ws, ZoneID: w.zone[zone],
		StagingConfigID: w.cfg[zone], Origin: sessions.OriginStaged, Permissions: all, Cores: 0.5, MemoryMB: 128})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := sessions.Transition(ctx, w.db, s.ID, sessions.Provisioning, sessions.Staged, sessions.Change{}); err != nil {
		w.t.Fatal(err)
	}
	return s.ID
}

// request publishes a request and returns the assigner's decision: the
// session.assigned or provision.requested (or session.failed) event.
func (w *world) request(t *testing.T, user, zone string) (string, apptest.Recorded) {
	t.Helper()
	id, _, err := w.client.Publish(context.Background(), client.Request{User: user, Workspace: "demo", Zone: zone})
	if err != nil {
		t.Fatal(err)
	}
	return id, w.rec.WaitAny(t, id, 10*time.Second, events.TypeSessionAssigned, events.TypeProvisionRequested, events.TypeSessionFailed)
}

// onDemand checks that the decision got is an on-demand session saying
// reason, in the provision.requested event and in the session row, and
// returns both.
func (w *world) onDemand(t *testing.T, got apptest.Recorded, reason string) (events.ProvisionRequested, sessions.Session) {
	t.Helper()
	if got.Subject != events.TypeProvisionRequested {
		t.Fatalf("want provision.requested, got %s", got.Subject)
	}
	p := decode[events.ProvisionRequested](t, got)
	if p.OnDemandReason != reason {
		t.Errorf("provision.requested says on_demand_reason %q, want %q", p.OnDemandReason, reason)
	}
	s, err := sessions.Get(context.Background(), w.db, p.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if s.OnDemandReason != reason {
		t.Errorf("session row says on_demand_reason %q, want %q", s.OnDemandReason, reason)
	}
	return p, s
}

func decode[T any](t *testing.T, r apptest.Recorded) T {
	t.Helper()
	var v T
	if err := r.Event.DecodeData(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStagedSessionAssignedInTheRequestsZoneWhenPermissionsMatch(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	stagedA := w.stage("zone-a")
	w.stage("zone-b")
	_, got := w.request(t, "alice", "zone-a")
	if got.Subject != events.TypeSessionAssigned {
		t.Fatalf("want session.assigned, got %s", got.Subject)
	}
	a := decode[events.SessionAssigned](t, got)
	if a.SessionID != stagedA || a.Zone != "zone-a" || a.User != "alice" || a.RequestedZone != "zone-a" || a.ZoneSearchStep != 1 {
		t.Fatalf("assigned %+v, want the staged session %s of zone-a, the requested zone: zone search step 1", a, stagedA)
	}
	s, err := sessions.Get(context.Background(), w.db, stagedA)
	if err != nil || s.Status != sessions.Assigning || s.RequestID.String != a.RequestID {
		t.Fatalf("session after claim: %+v %v", s, err)
	}
}

func TestStagedSessionFromAlternateZoneWhenNoneStagedHere(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	stagedB := w.stage("zone-b")
	_, got := w.request(t, "alice", "zone-a")
	a := decode[events.SessionAssigned](t, got)
	if got.Subject != events.TypeSessionAssigned || a.SessionID != stagedB || a.Zone != "zone-b" {
		t.Fatalf("want the staged session of zone-b, got %s %+v", got.Subject, a)
	}
	// zone-b is the second zone of zone-a's search order.
	if a.RequestedZone != "zone-a" || a.ZoneSearchStep != 2 {
		t.Errorf("session.assigned says requested_zone %q, zone_search_step %d; want zone-a, 2", a.RequestedZone, a.ZoneSearchStep)
	}
}

func TestOnDemandWhenAlternateSearchIsOff(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	w.stage("zone-a") // staged elsewhere, but zone-b does not search alternates
	_, got := w.request(t, "alice", "zone-b")
	// zone-b has a staging config of demo with alice's permissions, with
	// nothing staged.
	p, _ := w.onDemand(t, got, "none_staged")
	if p.Origin != "on_demand" || len(p.Zones) != 1 || p.Zones[0] != "zone-b" {
		t.Fatalf("on-demand request %+v, want only zone-b", p)
	}
}

func TestOnDemandHereThenElsewhereWhenNothingIsStaged(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	id, got := w.request(t, "alice", "zone-a")
	p, _ := w.onDemand(t, got, "none_staged")
	if len(p.Zones) != 2 || p.Zones[0] != "zone-a" || p.Zones[1] != "zone-b" || p.RequestedZone != "zone-a" {
		t.Fatalf("want on demand in zone-a then zone-b, requested in zone-a, got %+v", p)
	}
	s, err := sessions.GetByRequestID(context.Background(), w.db, id)
	if err != nil || s.Status != sessions.Provisioning || s.Origin != sessions.OriginOnDemand || s.Cores != 0.5 {
		t.Fatalf("on-demand session row: %+v %v", s, err)
	}
}

func TestStagedSessionNotAssignedWhenAnyPermissionDiffers(t *testing.T) {
	w := newWorld(t)
	for _, perm := range []string{"allow_audio", "allow_clipboard_down", "allow_clipboard_up", "allow_downloads",
		"allow_microphone", "allow_uploads", "allow_gamepad"} {
		t.Run(perm, func(t *testing.T) {
			g := uuid.NewString()
			w.db.MustExec(fmt.Sprintf(`INSERT INTO groups (id, name, priority, %s) VALUES ($1, $2, 1, false)`, perm), g, "no-"+perm)
			user := "user-" + perm
			w.user(user, w.group, g) // the restricted group has the better priority
			staged := w.stage("zone-a")
			_, got := w.request(t, user, "zone-a")
			if got.Subject != events.TypeProvisionRequested {
				t.Fatalf("a user whose %s differs must get an on-demand session, got %s", perm, got.Subject)
			}
			w.onDemand(t, got, "permissions_differ:"+perm)
			s, _ := sessions.Get(context.Background(), w.db, staged)
			if s.Status != sessions.Staged {
				t.Fatalf("the staged session must stay staged, is %s", s.Status)
			}
		})
	}
}

func TestIncompatibleSettingForcesOnDemandAndRecordsViolation(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		setting string
		group   string // column = value on the user's group
		ws      string // column = value on a workspace of its own
	}{
		{"persistent_profile", "", `persistent_profile_path = '/profiles/{username}'`},
		{"volume_mappings", "", `volume_mappings = '{"/home/{user_id}": {"bind": "/home/user", "mode": "rw"}}'`},
		{"expose_user_environment_vars", "expose_user_environment_vars = true", ""},
		{"inject_ssh_keys", "inject_ssh_keys = true", ""},
		{"run_config", `run_config = '{"hostname": "x"}'`, ""},
		{"volume_mapping", `volume_mapping = '{"/a": {"bind": "/b"}}'`, ""},
		{"web_filter_policy", `web_filter_policy_id = (SELECT id FROM web_filter_policies WHERE name = 'strict')`, ""},
	}
	w.db.MustExec(`INSERT INTO web_filter_policies (id, name, default_allow) VALUES ($1, 'strict', false)`, uuid.NewString())
	for _, c := range cases {
		t.Run(c.setting, func(t *testing.T) {
			user := "user-" + c.setting
			w.user(user, w.group)
			w.stage("zone-a")
			var restore func()
			if c.group != "" {
				w.db.MustExec(`UPDATE groups SET `+c.group+` WHERE id = $1`, w.group)
				restore = func() {
					w.db.MustExec(`UPDATE groups SET expose_user_environment_vars = false, inject_ssh_keys = false,
						run_config = '{}', volume_mapping = '{}', web_filter_policy_id = NULL WHERE id = $1`, w.group)
				}
			} else {
				w.db.MustExec(`UPDATE workspaces SET `+c.ws+` WHERE id = $1`, w.ws)
				restore = func() {
					w.db.MustExec(`UPDATE workspaces SET persistent_profile_path = '', volume_mappings = '{}' WHERE id = $1`, w.ws)
				}
			}
			defer restore()
			id, got := w.request(t, user, "zone-a")
			w.onDemand(t, got, "incompatible:"+c.setting)
			v := decode[events.StagingViolation](t, w.rec.Wait(t, events.TypeStagingViolation, id, 5*time.Second))
			if v.Setting != c.setting || v.User != user || v.Workspace != "demo" {
				t.Fatalf("violation event %+v", v)
			}
			var n int
			if err := w.db.Get(&n, `SELECT count(*) FROM violations WHERE request_id = $1 AND setting = $2 AND username = $3`, id, c.setting, user); err != nil || n != 1 {
				t.Fatalf("violations rows for %s: %d %v", c.setting, n, err)
			}
		})
	}
}

func TestOnDemandWhenTheWorkspaceHasNoStagingConfig(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	w.db.MustExec(`UPDATE staging_configs SET deleted_at = now()`)
	_, got := w.request(t, "alice", "zone-a")
	w.onDemand(t, got, "no_staging_config")
}

// Issue 10, point 3: the user's effective group's session_time_limit and
// keepalive_expiration go with the session they get, staged or on demand;
// a better-priority group without them means no limit.
func TestSessionsCarryTheEffectiveGroupsLimits(t *testing.T) {
	w := newWorld(t)
	limited := uuid.NewString()
	w.db.MustExec(`INSERT INTO groups (id, name, priority, session_time_limit, keepalive_expiration)
		VALUES ($1, 'limited', 10, '2 hours', '15 minutes')`, limited)
	unlimited := uuid.NewString()
	w.db.MustExec(`INSERT INTO groups (id, name, priority) VALUES ($1, 'unlimited', 1)`, unlimited)
	w.user("alice", w.group, limited)          // limited has the better priority
	w.user("bob", w.group, limited, unlimited) // unlimited has the best
	want := sessions.Limits{TimeLimit: 2 * time.Hour, KeepaliveExpiration: 15 * time.Minute}
	ctx := context.Background()

	w.stage("zone-a")
	_, got := w.request(t, "alice", "zone-a")
	if got.Subject != events.TypeSessionAssigned {
		t.Fatalf("want session.assigned, got %s", got.Subject)
	}
	claimed, err := sessions.Get(ctx, w.db, decode[events.SessionAssigned](t, got).SessionID)
	if err != nil || claimed.Limits != want || claimed.OnDemandReason != "" {
		t.Fatalf("claimed session limits %+v reason %q (%v), want %+v and no reason", claimed.Limits, claimed.OnDemandReason, err, want)
	}

	_, got = w.request(t, "alice", "zone-a")
	_, onDemand := w.onDemand(t, got, "none_staged")
	if onDemand.Limits != want {
		t.Fatalf("on-demand session limits %+v, want %+v", onDemand.Limits, want)
	}

	w.stage("zone-a")
	_, got = w.request(t, "bob", "zone-a")
	bobs, err := sessions.Get(ctx, w.db, decode[events.SessionAssigned](t, got).SessionID)
	if err != nil || bobs.Limits != (sessions.Limits{}) {
		t.Fatalf("bob's session limits %+v (%v), want none", bobs.Limits, err)
	}
}

func TestDuplicateRequestIDYieldsOneSession(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	w.stage("zone-a")
	w.stage("zone-a")
	ctx := context.Background()
	req := client.Request{RequestID: "dup-" + uuid.NewString(), User: "alice", Workspace: "demo", Zone: "zone-a"}
	if _, _, err := w.client.Publish(ctx, req); err != nil {
		t.Fatal(err)
	}
	w.rec.Wait(t, events.TypeSessionAssigned, req.RequestID, 10*time.Second)
	// The same request again, as JetStream sees it (de-duplicated) and as a
	// new message with the same request_id (past the duplicate window).
	if _, dup, err := w.client.Publish(ctx, req); err != nil || !dup {
		t.Fatalf("republish: duplicate=%v err=%v", dup, err)
	}
	ev, _ := events.NewWithID(uuid.NewString(), "test", events.TypeSessionRequested, events.SessionRequested{
		RequestID: req.RequestID, User: req.User, Workspace: req.Workspace, Zone: req.Zone})
	raw, _ := ev.Marshal()
	if _, err := w.pub.PublishRaw(ctx, events.TypeSessionRequested, ev.ID, raw, req.RequestID); err != nil {
		t.Fatal(err)
	}
	// The next request is served after both, so both were handled.
	w.user("bob", w.group)
	_, next := w.request(t, "bob", "zone-a")
	if next.Subject != events.TypeSessionAssigned {
		t.Fatalf("bob: %s", next.Subject)
	}
	var n int
	if err := w.db.Get(&n, `SELECT count(*) FROM sessions WHERE request_id = $1`, req.RequestID); err != nil || n != 1 {
		t.Fatalf("sessions for one request_id: %d %v", n, err)
	}
	if got := len(w.rec.Find(events.TypeSessionAssigned, req.RequestID)); got != 1 {
		t.Fatalf("session.assigned published %d times for one request", got)
	}
}

func TestUndecodableMessageIsDeadLetteredAndServiceKeepsServing(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	for _, garbage := range [][]byte{[]byte("not json"), []byte(`{"specversion":"1.0","id":"x","type":"greenroom.session.requested","source":"t","data":{"user":1}}`)} {
		msg := nats.NewMsg(events.TypeSessionRequested)
		msg.Data = garbage
		msg.Header.Set(apptest.HeaderTestGarbage, "1")
		if err := w.nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	apptest.Eventually(t, 10*time.Second, "two dead letters", func() bool {
		return len(w.rec.Find(bus.DeadLetterSubject(service.ConsumerName), "")) == 2
	})
	for _, r := range w.rec.Find(bus.DeadLetterSubject(service.ConsumerName), "") {
		dead := decode[events.DeadLetter](t, r)
		if dead.Consumer != service.ConsumerName || dead.StreamSequence == 0 || dead.NumDelivered != 1 || dead.Reason == "" {
			t.Fatalf("dead letter %+v", dead)
		}
		if dead.Payload != "not json" && !strings.Contains(dead.Payload, `"user":1`) {
			t.Fatalf("dead letter must carry the original payload: %+v", dead)
		}
	}
	_, got := w.request(t, "alice", "zone-a")
	if got.Subject != events.TypeProvisionRequested {
		t.Fatalf("the next good request must be served, got %s", got.Subject)
	}
}

func TestUnknownUserFailsTheRequestWithAReason(t *testing.T) {
	w := newWorld(t)
	_, got := w.request(t, "nobody", "zone-a")
	f := decode[events.SessionFailed](t, got)
	if got.Subject != events.TypeSessionFailed || f.Reason != events.ReasonUnknownReference {
		t.Fatalf("got %s %+v", got.Subject, f)
	}
	if f.RequestID == "" || f.Detail == "" {
		t.Fatalf("failure must name the request and say why: %+v", f)
	}
}

func TestRequestIDReusedByAnotherUserIsRefused(t *testing.T) {
	w := newWorld(t)
	w.user("alice", w.group)
	w.user("bob", w.group)
	w.stage("zone-a")
	ctx := context.Background()
	id := "shared-" + uuid.NewString()
	if _, _, err := w.client.Publish(ctx, client.Request{RequestID: id, User: "alice", Workspace: "demo", Zone: "zone-a"}); err != nil {
		t.Fatal(err)
	}
	w.rec.Wait(t, events.TypeSessionAssigned, id, 10*time.Second)
	// Bob's request carries the same request_id, past the stream's
	// duplicate window (a new message id).
	ev, _ := events.NewWithID(uuid.NewString(), "test", events.TypeSessionRequested, events.SessionRequested{
		RequestID: id, User: "bob", Workspace: "demo", Zone: "zone-a"})
	raw, _ := ev.Marshal()
	if _, err := w.pub.PublishRaw(ctx, events.TypeSessionRequested, ev.ID, raw, id); err != nil {
		t.Fatal(err)
	}
	f := decode[events.SessionFailed](t, w.rec.Wait(t, events.TypeSessionFailed, id, 10*time.Second))
	if f.Reason != events.ReasonRequestConflict || !strings.Contains(f.Detail, "alice") {
		t.Fatalf("failure %+v", f)
	}
	var n int
	if err := w.db.Get(&n, `SELECT count(*) FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = 'bob')`); err != nil || n != 0 {
		t.Fatalf("bob has %d sessions (%v)", n, err)
	}
}
