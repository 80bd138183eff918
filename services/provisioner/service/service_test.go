package service_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// The request names zone-0, which has no agent: its search's second zone,
// zone-a, serves it, and session.ready says so (zone_search_step 2).
func TestOnDemandSessionRunsWithLabelsLimitsAndPublishedPort(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{cores: 0.5, memoryMB: 64})
	e.addZone("zone-0", "least_load")
	zones := []string{"zone-0", f.zone}
	start := time.Now()
	sid, rid := e.requestOnDemand(f, zones, events.Permissions{AllowAudio: true, AllowUploads: true})

	ev := e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	t.Logf("on-demand request → session.ready: %s (demo image, init delay 300ms)", time.Since(start).Round(time.Millisecond))
	ready := decode[events.SessionReady](t, ev)
	if h := e.requestIDHeader(ev); h != rid {
		t.Errorf("session.ready carries request id header %q, want %q", h, rid)
	}
	if ready.SessionID != sid || ready.User != f.user || ready.Workspace != f.wsName || ready.Zone != f.zone ||
		ready.Agent != f.agent || ready.Origin != sessions.OriginOnDemand || ready.ContainerID == "" {
		t.Errorf("session.ready = %+v", ready)
	}
	if ready.RequestedZone != "zone-0" || ready.ZoneSearchStep != 2 {
		t.Errorf("session.ready says requested_zone %q, zone_search_step %d; want zone-0, 2", ready.RequestedZone, ready.ZoneSearchStep)
	}
	s := e.session(sid)
	if s.Status != sessions.Running || s.ContainerID != ready.ContainerID || s.URL != ready.URL || !s.HostPort.Valid || s.AgentID.String != f.agentID {
		t.Errorf("session row = status %s container %q url %q host_port %v agent %v", s.Status, s.ContainerID, s.URL, s.HostPort, s.AgentID)
	}

	in, err := e.inspect(s.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	var deployment string
	if err := e.db.Get(&deployment, `SELECT id FROM deployment`); err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		domain.LabelManaged: "true", domain.LabelSession: sid, domain.LabelWorkspace: f.wsName,
		domain.LabelZone: f.zone, domain.LabelAgent: f.agent, service.DeploymentLabel: deployment,
	}
	for k, v := range wantLabels {
		if in.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, in.Config.Labels[k], v)
		}
	}
	if _, ok := in.Config.Labels[domain.LabelStagingConfig]; ok {
		t.Error("on-demand container carries a staging config label")
	}
	if in.HostConfig.NanoCPUs != 500_000_000 || in.HostConfig.Memory != 64<<20 {
		t.Errorf("limits = %d nano-CPUs, %d bytes; want 0.5 CPU, 64 MiB", in.HostConfig.NanoCPUs, in.HostConfig.Memory)
	}
	b := in.HostConfig.PortBindings[network.MustParsePort("8080/tcp")]
	if len(b) != 1 || b[0].HostIP.String() != "127.0.0.1" {
		t.Errorf("port bindings = %v, want 8080/tcp on 127.0.0.1", in.HostConfig.PortBindings)
	}
	for _, want := range []string{"GREENROOM_SESSION_ID=" + sid, "PORT=8080", "GREENROOM_ALLOW_AUDIO=true",
		"GREENROOM_ALLOW_UPLOADS=true", "GREENROOM_ALLOW_GAMEPAD=false", "GREENROOM_DEMO_INIT_DELAY=300ms"} {
		if !slices.Contains(in.Config.Env, want) {
			t.Errorf("container env lacks %s: %v", want, in.Config.Env)
		}
	}
	if code, body := httpGet(t, s.UpstreamURL); code != 200 || !strings.Contains(body, sid) {
		t.Errorf("GET %s = %d %q", s.UpstreamURL, code, body)
	}

	created := decode[events.ContainerCreated](t, e.waitEvent(events.TypeContainerCreated, 10*time.Second, dataIs("session_id", sid)))
	if want := (events.ContainerCreated{SessionID: sid, RequestID: rid, Agent: f.agent, Zone: f.zone,
		ContainerID: ready.ContainerID, Image: demoImage}); created != want {
		t.Errorf("container.created = %+v, want %+v", created, want)
	}

	// A second delivery of the request makes no second container, and
	// announces none.
	e.emit(events.TypeProvisionRequested, events.ProvisionRequested{RequestID: rid, SessionID: sid, Workspace: f.wsName, Zones: zones,
		Origin: sessions.OriginOnDemand, RequestedZone: zones[0]})
	e.waitIdle()
	if n := len(e.containers(map[string]string{domain.LabelSession: sid})); n != 1 {
		t.Errorf("%d containers for the session after a redelivery, want 1", n)
	}
	if n := e.countEvents(events.TypeSessionReady, dataIs("session_id", sid)); n != 1 {
		t.Errorf("%d session.ready events, want 1", n)
	}
	if n := e.countEvents(events.TypeContainerCreated, dataIs("session_id", sid)); n != 1 {
		t.Errorf("%d container.created events for one container, want 1", n)
	}
}

func TestDestroyRemovesTheContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))

	e.emit(events.TypeSessionDestroy, events.SessionDestroy{SessionID: sid, Reason: "api"})
	ev := e.waitEvent(events.TypeSessionDestroyed, 30*time.Second, dataIs("session_id", sid))
	if d := decode[events.SessionDestroyed](t, ev); d.Reason != "api" || d.Cause != events.CauseDeleted || d.RequestID != rid {
		t.Errorf("session.destroyed = %+v, want reason api, cause deleted", d)
	}
	if n := len(e.containers(map[string]string{domain.LabelSession: sid})); n != 0 {
		t.Errorf("%d containers left after destroy", n)
	}
	if s := e.session(sid); s.Status != sessions.Destroyed || !s.DestroyedAt.Valid {
		t.Errorf("status %s, destroyed_at %v", s.Status, s.DestroyedAt)
	}
}

func TestNoCapacityFailsWithDetailPerZone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := fixture{zone: "zone-a", wsName: "big", user: "bob"}
	f.zoneID = e.addZone("zone-a", "least_load")
	e.addZone("zone-b", "most_load")
	f.agentID = e.addAgent(f.zoneID, "a1", 0.5, 4096)
	f.workspaceID = e.addWorkspace("big", workspaceOptions{cores: 1})
	f.userID = e.addUser("bob")

	sid, rid := e.requestOnDemand(f, []string{"zone-a", "zone-b"}, events.Permissions{})
	ev := e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("request_id", rid))
	failed := decode[events.SessionFailed](t, ev)
	want := "zone-a: agent a1 has 0.5 free cores, needs 1; zone-b: no enabled agents"
	if failed.Reason != events.ReasonNoCapacity || failed.Detail != want || failed.SessionID != sid {
		t.Errorf("session.failed = %+v, want reason no_capacity, detail %q", failed, want)
	}
	if s := e.session(sid); s.Status != sessions.Failed || s.FailureReason != events.ReasonNoCapacity || s.AgentID.Valid {
		t.Errorf("session = status %s reason %q agent %v", s.Status, s.FailureReason, s.AgentID)
	}
}

func TestDisabledWorkspaceFailsTheRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{enabled: ptr(false)})
	_, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("request_id", rid)))
	if failed.Reason != events.ReasonWorkspaceDisabled || !strings.Contains(failed.Detail, "demo") {
		t.Errorf("session.failed = %+v", failed)
	}
}

// TestTCPProbeWaitsUntilTheWorkspaceListens: with no readiness_path the
// probe works over TCP, where Docker's published port accepts connections
// before anything listens in the container. The session must only be ready
// once the workspace really answers.
func TestTCPProbeWaitsUntilTheWorkspaceListens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{readinessPath: ptr(""), initDelay: "1500ms"})
	start := time.Now()
	_, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	ready := decode[events.SessionReady](t, e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid)))
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("ready after %s, before the workspace's 1.5 s initialisation ended", took)
	}
	up := e.session(ready.SessionID).UpstreamURL
	if code, _ := httpGet(t, up); code != 200 {
		t.Errorf("GET %s right after session.ready = %d", up, code)
	}
}

func TestStagingPoolFillsToDesiredAndShrinksNewestFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{})
	perms := events.Permissions{AllowAudio: true, AllowClipboardDown: true}
	cfg := e.addStagingConfig(f, 2, perms)
	start := time.Now()
	e.emitOn(events.TypeConfigChanged+".staging_config", events.TypeConfigChanged, events.ConfigChanged{Kind: "staging_config", Op: "created", ID: cfg})

	e.waitFor("2 staged sessions", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 2 })
	t.Logf("pool of 2 filled in %s", time.Since(start).Round(time.Millisecond))
	e.waitFor("status ok", 10*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	if n := e.countSessions(cfg, sessions.Provisioning, sessions.Staged, sessions.Assigning); n != 2 {
		t.Errorf("%d live sessions in the pool, want 2", n)
	}
	list := e.containers(map[string]string{domain.LabelStagingConfig: cfg})
	if len(list) != 2 {
		t.Fatalf("%d containers for the staging config, want 2", len(list))
	}
	for _, c := range list {
		if c.State != "running" || c.Labels[domain.LabelManaged] != "true" {
			t.Errorf("container %s: state %s labels %v", c.ID[:12], c.State, c.Labels)
		}
	}
	staged := e.waitEvent(events.TypeSessionStaged, 5*time.Second, dataIs("staging_config_id", cfg))
	if d := decode[events.SessionStaged](t, staged); d.Agent != f.agent || d.Zone != f.zone || d.Workspace != f.wsName {
		t.Errorf("session.staged = %+v", d)
	}
	var rows []struct {
		ID        string    `db:"id"`
		StagedAt  time.Time `db:"staged_at"`
		ExpiresAt time.Time `db:"expires_at"`
		Perms     []byte    `db:"permissions"`
	}
	if err := e.db.SelectContext(e.ctx, &rows, `SELECT id, staged_at, expires_at, permissions FROM sessions
		WHERE staging_config_id = $1 AND status = 'staged' ORDER BY staged_at`, cfg); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if d := r.ExpiresAt.Sub(r.StagedAt); d < 2*time.Hour-time.Second || d > 2*time.Hour+time.Second {
			t.Errorf("session %s expires %s after being staged, want expiration_hours 2", r.ID, d)
		}
		if !strings.Contains(string(r.Perms), `"allow_audio": true`) && !strings.Contains(string(r.Perms), `"allow_audio":true`) {
			t.Errorf("session %s permissions %s lack the config's allow_audio", r.ID, r.Perms)
		}
	}

	// Lowering desired destroys the excess at once, newest first.
	e.exec(`UPDATE staging_configs SET desired_sessions = 1 WHERE id = $1`, cfg)
	e.emitOn(events.TypeConfigChanged+".staging_config", events.TypeConfigChanged, events.ConfigChanged{Kind: "staging_config", Op: "updated", ID: cfg})
	newest := rows[1].ID
	ev := e.waitEvent(events.TypeSessionDestroyed, 30*time.Second, dataIs("session_id", newest))
	if d := decode[events.SessionDestroyed](t, ev); d.Reason != "pool_shrink" || d.Cause != events.CauseShrunk || d.StagingConfigID != cfg {
		t.Errorf("session.destroyed = %+v, want reason pool_shrink, cause shrunk", d)
	}
	if s := e.session(rows[0].ID); s.Status != sessions.Staged {
		t.Errorf("oldest staged session is %s, want it kept", s.Status)
	}
	e.waitFor("1 container left", 10*time.Second, func() bool {
		return len(e.containers(map[string]string{domain.LabelStagingConfig: cfg})) == 1
	})
}

func TestAssigningStagedSessionRunsAssignCommandAndRefillsThePool(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })

	claimed, rid := e.claimStaged(f, cfg)
	start := time.Now()
	ready := decode[events.SessionReady](t, e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid)))
	t.Logf("staged claim → session.ready: %s (includes the assign exec, the outbox relay and the bus)", time.Since(start).Round(time.Millisecond))
	if ready.SessionID != claimed.ID || ready.Origin != sessions.OriginStaged || ready.User != f.user || ready.URL != claimed.URL || ready.Agent != f.agent {
		t.Errorf("session.ready = %+v", ready)
	}
	// The zone search step is the assigner's claim's, handed on.
	if ready.RequestedZone != f.zone || ready.ZoneSearchStep != 1 {
		t.Errorf("session.ready says requested_zone %q, zone_search_step %d; want %s, 1", ready.RequestedZone, ready.ZoneSearchStep, f.zone)
	}
	ran := decode[events.AssignRan](t, e.waitEvent(events.TypeSessionAssignRan, 10*time.Second, dataIs("request_id", rid)))
	if ran.SessionID != claimed.ID || ran.User != f.user || ran.Method != events.AssignMethodExec || !ran.OK {
		t.Errorf("session.assign_ran = %+v, want the assign command of %s, ok", ran, claimed.ID)
	}
	if n := e.countEvents(events.TypeSessionAssignRan, dataIs("session_id", claimed.ID)); n != 1 {
		t.Errorf("%d session.assign_ran events, want 1", n)
	}
	if s := e.session(claimed.ID); s.Status != sessions.Running {
		t.Errorf("claimed session is %s, want running", s.Status)
	}
	code, body := httpGet(t, claimed.UpstreamURL)
	if code != 200 || !strings.Contains(body, "Assigned to "+f.user) || !strings.Contains(body, f.userID) {
		t.Errorf("GET %s after assign = %d:\n%s", claimed.UpstreamURL, code, body)
	}
	if sum, n := e.histogram("greenroom_provisioner_assign_exec_seconds"); n != 1 {
		t.Errorf("assign exec histogram has %d observations, want 1", n)
	} else {
		t.Logf("assign exec took %s", time.Duration(sum*float64(time.Second)).Round(time.Millisecond))
	}

	// The claim started a replacement at once.
	e.waitFor("a replacement staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
	if n := e.countSessions(cfg, sessions.Provisioning, sessions.Staged); n != 1 {
		t.Errorf("%d sessions in the pool after refill, want 1", n)
	}
}

func TestFailingAssignCommandFailsTheSessionAndRemovesItsContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{execConfig: `{"assign": {"cmd": ["/demo-workspace", "assign", "--bogus", "{username}"]}}`})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })

	claimed, rid := e.claimStaged(f, cfg)
	failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("request_id", rid)))
	if failed.Reason != events.ReasonAssignFailed || !strings.Contains(failed.Detail, "exited with code 2") || !strings.Contains(failed.Detail, "bogus") {
		t.Errorf("session.failed = %+v", failed)
	}
	if s := e.session(claimed.ID); s.Status != sessions.Failed {
		t.Errorf("session is %s, want failed", s.Status)
	}
	ran := decode[events.AssignRan](t, e.waitEvent(events.TypeSessionAssignRan, 10*time.Second, dataIs("request_id", rid)))
	if ran.Method != events.AssignMethodExec || ran.OK || !strings.Contains(ran.Detail, "exited with code 2") {
		t.Errorf("session.assign_ran = %+v, want the assign command, failed, with its exit code", ran)
	}
	// The failure is recorded first, then the container removed, and
	// its removal announced.
	e.waitFor("the failed session's container to be removed", 10*time.Second, func() bool {
		return len(e.containers(map[string]string{domain.LabelSession: claimed.ID})) == 0
	})
	gone := decode[events.SessionDestroyed](t, e.waitEvent(events.TypeSessionDestroyed, 10*time.Second, dataIs("session_id", claimed.ID)))
	if gone.Reason != events.ReasonAssignFailed || gone.Cause != events.CauseFailed {
		t.Errorf("session.destroyed = %+v, want reason assign_failed, cause failed", gone)
	}
	if st := e.configStatus(cfg); st == "shortfall" {
		t.Error("a failed assignment put the pool in shortfall; only failed creations should")
	}
}

func TestExpiredStagedSessionIsDestroyedAndReplaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
	var old string
	if err := e.db.GetContext(e.ctx, &old, `SELECT id FROM sessions WHERE staging_config_id = $1 AND status = 'staged'`, cfg); err != nil {
		t.Fatal(err)
	}

	// What the expiry service does: staged → destroying, then the event.
	if _, err := sessions.Transition(e.ctx, e.db, old, sessions.Staged, sessions.Destroying, sessions.Change{}); err != nil {
		t.Fatal(err)
	}
	e.emit(events.TypeSessionExpired, events.SessionExpired{SessionID: old, StagingConfigID: cfg, Reason: events.ExpiredStaged})
	gone := decode[events.SessionDestroyed](t, e.waitEvent(events.TypeSessionDestroyed, 30*time.Second, dataIs("session_id", old)))
	if gone.Reason != events.ExpiredStaged || gone.Cause != events.CauseExpired || gone.StagingConfigID != cfg {
		t.Errorf("session.destroyed = %+v, want reason staged_expired, cause expired", gone)
	}
	if n := len(e.containers(map[string]string{domain.LabelSession: old})); n != 0 {
		t.Errorf("%d containers left for the expired session", n)
	}
	e.waitFor("a new staged session", 30*time.Second, func() bool {
		var n int
		_ = e.db.GetContext(e.ctx, &n, `SELECT count(*) FROM sessions WHERE staging_config_id = $1 AND status = 'staged' AND id <> $2`, cfg, old)
		return n == 1
	})
}

// TestProvisioningTimeoutRemovesTheContainerBeingMade: the expiry service
// fails a session stuck in provisioning while its container still starts;
// the container must go and no session.ready may follow.
func TestProvisioningTimeoutRemovesTheContainerBeingMade(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "20s"})
	sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	e.waitFor("the container to be recorded", 30*time.Second, func() bool { return e.session(sid).ContainerID != "" })

	reason := events.ReasonProvisioningTimeout
	if _, err := sessions.Transition(e.ctx, e.db, sid, sessions.Provisioning, sessions.Failed, sessions.Change{FailureReason: &reason}); err != nil {
		t.Fatal(err)
	}
	e.emit(events.TypeSessionExpired, events.SessionExpired{SessionID: sid, RequestID: rid, Reason: events.ExpiredProvisioning})
	gone := decode[events.SessionDestroyed](t, e.waitEvent(events.TypeSessionDestroyed, 30*time.Second, dataIs("session_id", sid)))
	if gone.Cause != events.CauseProvisioningTimeout {
		t.Errorf("session.destroyed = %+v, want cause provisioning_timeout", gone)
	}
	e.waitFor("the container to be gone", 10*time.Second, func() bool {
		return len(e.containers(map[string]string{domain.LabelSession: sid})) == 0
	})
	e.waitIdle()
	if s := e.session(sid); s.Status != sessions.Failed {
		t.Errorf("session is %s, want failed", s.Status)
	}
	if n := e.countEvents(events.TypeSessionReady, dataIs("session_id", sid)); n != 0 {
		t.Error("a timed-out session was reported ready")
	}
}

// TestEveryPublishedEventMatchesItsSchema runs a whole pool cycle and
// validates everything the provisioner published.
func TestEveryPublishedEventMatchesItsSchema(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
	_, rid := e.claimStaged(f, cfg)
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	e.waitIdle()
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[string]bool{}
	for _, ev := range e.events {
		if ev.Source != e.deps.Source() {
			continue
		}
		seen[ev.Type] = true
		if err := e.deps.Validator.ValidateEvent(ev); err != nil {
			t.Errorf("%s: %v", ev.Type, err)
		}
	}
	for _, want := range []string{events.TypeProvisionRequested, events.TypeContainerCreated, events.TypeSessionStaged,
		events.TypeSessionReady, events.TypeSessionAssignRan} {
		if !seen[want] {
			t.Errorf("no %s published", want)
		}
	}
}
