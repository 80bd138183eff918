package service_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// onlyEventsNotice is a provisioner whose periodic container audit runs
// at start and then once an hour, with its default grace period (30 s)
// leaving alone every session a test makes: only the engine watcher can
// notice a container lost during the test.
func onlyEventsNotice() envOptions {
	return envOptions{noService: true, cfg: service.Config{ContainerAudit: audit.ContainerAuditorConfig{Interval: time.Hour}}}
}

// TestContainerKilledBehindOurBackIsNoticedFromEngineEvents: a container
// that dies or is removed behind Greenroom's back is noticed from the
// engine's event stream at once, not at the next audit pass: a staged one
// is failed as container_gone and replaced, a running one's requester
// hears session.failed with the reason.
func TestContainerKilledBehindOurBackIsNoticedFromEngineEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, onlyEventsNotice())
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 2, events.Permissions{})
	e.startWatched()
	if c := e.svc.EngineWatcher.TestSignals.Connected.WaitOrTimeout(t, 30*time.Second); c.Endpoint != dockerEndpoint() || c.Audit.Failed != 0 {
		t.Errorf("first stream %+v, want %s with nothing failed", c, dockerEndpoint())
	}
	e.waitFor("2 staged sessions", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 2 })
	staged := e.stagedSessions(cfg)

	// docker kill of a staged container.
	killed := staged[0]
	start := time.Now()
	if _, err := e.docker.ContainerKill(e.ctx, killed.ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	e.waitJudged(killed.ID, 10*time.Second)
	if s := e.session(killed.ID); s.Status != sessions.Failed || s.FailureReason != "container_gone: exited (code 137)" {
		t.Errorf("killed staged session is %s (%q), want failed as container_gone: exited (code 137)", s.Status, s.FailureReason)
	}
	failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 10*time.Second, dataIs("session_id", killed.ID)))
	if want := "container " + killed.ContainerID[:12] + " of the staged session on agent " + f.agent + ": exited (code 137)"; failed.Reason != events.ReasonContainerGone || failed.Detail != want {
		t.Errorf("session.failed = %+v, want container_gone with detail %q", failed, want)
	}
	e.waitFor("the pool refilled", 30*time.Second, func() bool { return e.poolRefilledWithout(cfg, 2, killed.ID) })
	// Measured by the database's clock, this host's: when the session
	// failed and when its replacement was staged.
	replacement := slices.DeleteFunc(e.stagedSessions(cfg), func(s sessions.Session) bool { return s.ID == staged[1].ID })[0]
	t.Logf("docker kill of a staged container → session failed: %s; → replacement staged: %s",
		e.session(killed.ID).DestroyedAt.Time.Sub(start).Round(time.Millisecond), replacement.StagedAt.Time.Sub(start).Round(time.Millisecond))
	e.waitFor("the killed container removed", 10*time.Second, func() bool {
		return len(e.containers(map[string]string{domain.LabelSession: killed.ID})) == 0
	})

	// docker rm -f of a staged container: the engine kills it ("die"),
	// then removes it ("destroy"); the first event ends the session.
	removed := staged[1]
	e.removeBehindGreenroom(removed.ContainerID)
	e.waitJudged(removed.ID, 10*time.Second)
	if s := e.session(removed.ID); s.Status != sessions.Failed || !slices.Contains([]string{"container_gone: exited (code 137)", "container_gone: removed"}, s.FailureReason) {
		t.Errorf("removed staged session is %s (%q), want failed as container_gone", s.Status, s.FailureReason)
	}
	e.waitFor("the pool refilled again", 30*time.Second, func() bool { return e.poolRefilledWithout(cfg, 2, killed.ID, removed.ID) })

	// A running session's container killed: its user's request ends
	// with session.failed naming the reason.
	sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	running := e.session(sid)
	if _, err := e.docker.ContainerKill(e.ctx, running.ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	e.waitJudged(sid, 10*time.Second)
	ev := e.waitEvent(events.TypeSessionFailed, 10*time.Second, dataIs("session_id", sid)) // validated against its schema
	failed = decode[events.SessionFailed](t, ev)
	if want := "container " + running.ContainerID[:12] + " of the running session on agent " + f.agent + ": exited (code 137)"; failed.Reason != events.ReasonContainerGone ||
		failed.RequestID != rid || failed.Detail != want {
		t.Errorf("session.failed = %+v, want container_gone for request %s with detail %q", failed, rid, want)
	}
	if h := e.requestIDHeader(ev); h != rid {
		t.Errorf("session.failed carries request id header %q, want %q", h, rid)
	}
	if s := e.session(sid); s.Status != sessions.Failed || s.FailureReason != "container_gone: exited (code 137)" || !s.DestroyedAt.Valid {
		t.Errorf("running session is %s (%q), want failed as container_gone: exited (code 137)", s.Status, s.FailureReason)
	}

	// A container that never ran, removed: only "destroy" comes.
	neverSession := e.sessionWithContainer(f, "", sessions.Running, neverExisted())
	never := e.managedContainer(neverSession, false)
	e.exec(`UPDATE sessions SET container_id = $2 WHERE id = $1`, neverSession, never)
	e.removeBehindGreenroom(never)
	e.waitJudged(neverSession, 10*time.Second)
	if s := e.session(neverSession); s.FailureReason != "container_gone: removed" {
		t.Errorf("session whose container was removed: failure_reason %q, want container_gone: removed", s.FailureReason)
	}

	for status, want := range map[string]float64{"staged": 2, "running": 2} {
		e.waitCounter("greenroom_provisioner_sessions_container_gone_total", map[string]string{"status": status}, want)
	}
	if n := e.counter("greenroom_provisioner_engine_events_total", map[string]string{"action": "die"}); n < 3 {
		t.Errorf("%v die events counted, want at least 3", n)
	}
}

// TestContainerRemovedByGreenroomItselfIsIgnored: destroying a session
// removes its container, and the engine reports that like any other
// removal; the session must end destroyed, not failed.
func TestContainerRemovedByGreenroomItselfIsIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, onlyEventsNotice())
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	e.startWatched()
	e.svc.EngineWatcher.TestSignals.Connected.WaitOrTimeout(t, 30*time.Second)
	sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	containerID := e.session(sid).ContainerID

	e.emit(events.TypeSessionDestroy, events.SessionDestroy{SessionID: sid, Reason: "user_logout"})
	e.waitEvent(events.TypeSessionDestroyed, 30*time.Second, dataIs("session_id", sid))
	// The engine reports the removal; wait until the watcher judged it.
	e.waitEventJudged("the destroy of the session's container judged", 10*time.Second, func(ev audit.EngineEvent) bool {
		return ev.ContainerID == containerID && ev.Action == "destroy"
	})
	if s := e.session(sid); s.Status != sessions.Destroyed {
		t.Errorf("destroyed session is %s (%q), want destroyed", s.Status, s.FailureReason)
	}
	if n := e.countEvents(events.TypeSessionFailed, dataIs("session_id", sid)); n != 0 {
		t.Errorf("%d session.failed for a session Greenroom destroyed", n)
	}
}

// TestEngineEventStreamReconnectsWithBackoffAndCatchesUp: when the engine
// goes away the watcher tries again after growing, jittered waits (not in
// a hot loop); when it is back, one audit pass fails what died meanwhile.
func TestEngineEventStreamReconnectsWithBackoffAndCatchesUp(t *testing.T) {
	t.Parallel()
	const backoffMin, backoffMax = 100 * time.Millisecond, time.Second
	opts := onlyEventsNotice()
	opts.cfg.ContainerAudit.GracePeriod = 100 * time.Millisecond // so the pass after reconnecting judges the session
	opts.cfg.EngineWatcher = audit.EngineWatcherConfig{BackoffMin: backoffMin, BackoffMax: backoffMax}
	e := newEnv(t, opts)
	proxy := newEngineProxy(t)
	zone := e.addZone("zone-p", "least_load")
	agent := uuid.NewString()
	e.exec(`INSERT INTO agents (id, name, zone_id, docker_endpoint, cores, memory_mb) VALUES ($1, 'agent-p', $2, $3, 4, 4096)`,
		agent, zone, proxy.endpoint())
	f := fixture{zoneID: zone, zone: "zone-p", agentID: agent, agent: "agent-p", wsName: "demo", user: "alice"}
	f.workspaceID = e.addWorkspace(f.wsName, workspaceOptions{initDelay: "0s"})
	f.userID = e.addUser(f.user)
	signals := &e.svc.EngineWatcher.TestSignals
	e.startWatched()
	signals.Connected.WaitOrTimeout(t, 30*time.Second)

	sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	e.waitFor("the session past the grace period", 10*time.Second, func() bool {
		return time.Since(e.session(sid).UpdatedAt) > 200*time.Millisecond
	})

	proxy.down()
	if ep := signals.Lost.WaitOrTimeout(t, 10*time.Second); ep != proxy.endpoint() {
		t.Errorf("lost stream of %s, want %s", ep, proxy.endpoint())
	}
	// What dies while nobody listens.
	if _, err := e.docker.ContainerKill(e.ctx, e.session(sid).ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	var first time.Time
	var waited time.Duration
	for i := range 4 {
		b := signals.Backoff.WaitOrTimeout(t, 10*time.Second)
		lo := min(backoffMin<<i, backoffMax)
		if b.Delay < lo || b.Delay > lo+lo/5 {
			t.Errorf("wait %d before reconnecting = %s, want %s plus at most 20 %%", i, b.Delay, lo)
		}
		if i == 0 {
			first = b.At
		} else if b.At.Sub(first) < waited {
			t.Errorf("attempt %d came %s after the first wait began, before the %s of waits before it", i, b.At.Sub(first), waited)
		}
		waited += b.Delay
	}
	if s := e.session(sid); s.Status != sessions.Running {
		t.Fatalf("session is %s while the engine was away, want running", s.Status)
	}

	proxy.up()
	c := signals.Connected.WaitOrTimeout(t, 10*time.Second)
	if c.Endpoint != proxy.endpoint() {
		t.Errorf("reconnected to %s, want %s", c.Endpoint, proxy.endpoint())
	}
	failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 10*time.Second, dataIs("session_id", sid)))
	if failed.Reason != events.ReasonContainerGone || failed.RequestID != rid {
		t.Errorf("session.failed = %+v", failed)
	}
	if s := e.session(sid); s.FailureReason != "container_gone: exited (code 137)" {
		t.Errorf("session failure_reason %q, want container_gone: exited (code 137)", s.FailureReason)
	}
	e.waitFor("the dead container removed", 10*time.Second, func() bool {
		return len(e.containers(map[string]string{domain.LabelSession: sid})) == 0
	})
	if n := e.counter("greenroom_provisioner_engine_event_streams_lost_total", nil); n < 1 {
		t.Errorf("lost streams counted: %v", n)
	}
}

// TestEngineWatcherWatchesAnAgentOnceItIsEnabled: an agent enabled
// (config.changed.agent) has its engine watched at once, not at the next
// periodic read of the agents; a disabled one stops being watched.
func TestEngineWatcherWatchesAnAgentOnceItIsEnabled(t *testing.T) {
	t.Parallel()
	opts := onlyEventsNotice()
	opts.cfg.EngineWatcher.AgentsInterval = time.Hour
	e := newEnv(t, opts)
	f := e.standardFixture(workspaceOptions{})
	e.exec(`UPDATE agents SET enabled = false WHERE id = $1`, f.agentID)
	signals := &e.svc.EngineWatcher.TestSignals
	e.startWatched()
	if w := signals.Watching.WaitOrTimeout(t, 10*time.Second); len(w) != 0 {
		t.Fatalf("watching %v with every agent disabled", w)
	}

	e.exec(`UPDATE agents SET enabled = true WHERE id = $1`, f.agentID)
	e.emitOn(events.TypeConfigChanged+".agent", events.TypeConfigChanged, events.ConfigChanged{Kind: "agent", Op: "updated", ID: f.agentID, Name: f.agent})
	e.waitWatching([]string{dockerEndpoint()})
	if c := signals.Connected.WaitOrTimeout(t, 10*time.Second); c.Endpoint != dockerEndpoint() {
		t.Errorf("connected to %s, want %s", c.Endpoint, dockerEndpoint())
	}

	e.exec(`UPDATE agents SET enabled = false WHERE id = $1`, f.agentID)
	e.emitOn(events.TypeConfigChanged+".agent", events.TypeConfigChanged, events.ConfigChanged{Kind: "agent", Op: "updated", ID: f.agentID, Name: f.agent})
	e.waitWatching([]string{})
}

// startWatched starts a service made with noService, with the engine
// watcher's test signals enabled first.
func (e *env) startWatched() {
	e.t.Helper()
	e.svc.EngineWatcher.TestSignals.Init()
	ctx, cancel := context.WithCancel(e.ctx)
	if err := e.svc.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cancel()
		e.svc.Stop()
		if err := e.svc.Err(); err != nil {
			e.t.Errorf("provisioner stopped with: %v", err)
		}
	})
}

// waitJudged waits until the engine watcher failed session sessionID on an
// engine event.
func (e *env) waitJudged(sessionID string, timeout time.Duration) {
	e.t.Helper()
	e.waitEventJudged("an engine event failing session "+sessionID, timeout, func(ev audit.EngineEvent) bool {
		return ev.SessionID == sessionID && ev.Result.Failed == 1
	})
}

// waitEventJudged waits until the engine watcher judged an event that
// matches.
func (e *env) waitEventJudged(what string, timeout time.Duration, match func(audit.EngineEvent) bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		if match(e.svc.EngineWatcher.TestSignals.EventJudged.WaitOrTimeout(e.t, left)) {
			return
		}
	}
}

// waitWatching waits until the watcher watches exactly endpoints.
func (e *env) waitWatching(endpoints []string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			e.t.Fatalf("timed out waiting to watch %v", endpoints)
		}
		if slices.Equal(e.svc.EngineWatcher.TestSignals.Watching.WaitOrTimeout(e.t, left), endpoints) {
			return
		}
	}
}

// poolRefilledWithout reports whether configID's pool holds n staged
// sessions, none of them lost.
func (e *env) poolRefilledWithout(configID string, n int, lost ...string) bool {
	now := e.stagedSessions(configID)
	return len(now) == n && !slices.ContainsFunc(now, func(s sessions.Session) bool { return slices.Contains(lost, s.ID) })
}

// managedContainer makes a container labelled as Greenroom makes them,
// for session sessionID, carrying the test's label; started or only
// created.
func (e *env) managedContainer(sessionID string, start bool) string {
	e.t.Helper()
	resp, err := e.docker.ContainerCreate(e.ctx, client.ContainerCreateOptions{Config: &container.Config{
		Image: demoImage,
		Env:   []string{"GREENROOM_DEMO_INIT_DELAY=0s"},
		Labels: map[string]string{domain.LabelManaged: "true", domain.LabelSession: sessionID,
			domain.LabelAgent: "agent-a1", testLabel: e.label},
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	if start {
		if _, err := e.docker.ContainerStart(e.ctx, resp.ID, client.ContainerStartOptions{}); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp.ID
}

// engineProxy stands between the provisioner and the local Docker engine,
// on a unix socket of its own, so that a test can take the engine away
// and bring it back.
type engineProxy struct {
	t       testing.TB
	path    string
	network string // of the engine
	address string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newEngineProxy(t testing.TB) *engineProxy {
	t.Helper()
	dir, err := os.MkdirTemp("", "grp") // short: a socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dockerEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	p := &engineProxy{t: t, path: filepath.Join(dir, "docker.sock"), network: u.Scheme, address: u.Host, conns: map[net.Conn]bool{}}
	if u.Scheme == "unix" {
		p.address = u.Path
	}
	p.up()
	t.Cleanup(func() { p.down(); _ = os.RemoveAll(dir) })
	return p
}

func (p *engineProxy) endpoint() string { return "unix://" + p.path }

// up listens again, forwarding every connection to the engine.
func (p *engineProxy) up() {
	p.t.Helper()
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

// down stops listening and cuts every connection, as an engine that
// stops would.
func (p *engineProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *engineProxy) forward(client net.Conn) {
	engine, err := net.Dial(p.network, p.address)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // went down meanwhile
		p.mu.Unlock()
		_ = client.Close()
		_ = engine.Close()
		return
	}
	p.conns[client], p.conns[engine] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) { _, _ = io.Copy(dst, src); done <- struct{}{} }
	go pipe(engine, client)
	go pipe(client, engine)
	<-done
	_ = client.Close()
	_ = engine.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, engine)
	p.mu.Unlock()
}
