package service_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// auditEveryTick runs the service's container auditor every 100 ms with a
// grace period of 100 ms, so that tests see a lost container acted on at
// once, and turns the engine watcher off: these tests check the periodic
// pass, the safety net for whatever the engines' event streams miss.
var auditEveryTick = envOptions{cfg: service.Config{ContainerAudit: audit.ContainerAuditorConfig{
	Interval: 100 * time.Millisecond, GracePeriod: 100 * time.Millisecond,
}, EngineWatcher: audit.EngineWatcherConfig{Disabled: true}}}

// TestStagedSessionWhoseContainerIsGoneIsReplaced is `make down` followed
// by `make up`: every staged container was removed behind Greenroom's
// back. The sessions must fail as container_gone (never be handed to a
// user) and their pool refill to its desired size.
func TestStagedSessionWhoseContainerIsGoneIsReplaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auditEveryTick)
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 2, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("2 staged sessions", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 2 })
	lost := e.stagedSessions(cfg)
	start := time.Now()
	for _, s := range lost {
		e.removeBehindGreenroom(s.ContainerID)
	}

	for _, s := range lost {
		failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("session_id", s.ID)))
		if failed.Reason != events.ReasonContainerGone || failed.RequestID != "" ||
			!strings.HasPrefix(failed.Detail, "container "+s.ContainerID[:12]+" of the staged session on agent "+f.agent+": ") {
			t.Errorf("session.failed = %+v", failed)
		}
		if got := e.session(s.ID); got.Status != sessions.Failed || !seenRemoved(got.FailureReason) {
			t.Errorf("lost session is %s with failure_reason %q", got.Status, got.FailureReason)
		}
	}
	e.waitFor("the pool refilled with 2 new staged sessions", 30*time.Second, func() bool {
		now := e.stagedSessions(cfg)
		return len(now) == 2 && !slices.ContainsFunc(now, func(s sessions.Session) bool {
			return s.ID == lost[0].ID || s.ID == lost[1].ID
		})
	})
	t.Logf("2 staged containers removed → pool back to 2 staged: %s", time.Since(start).Round(time.Millisecond))
	if n := e.countSessions(cfg, sessions.Provisioning, sessions.Staged); n != 2 {
		t.Errorf("%d sessions in the pool after refill, want 2", n)
	}
	e.waitCounter("greenroom_provisioner_sessions_container_gone_total", map[string]string{"status": "staged"}, 2)
	if st := e.configStatus(cfg); st == "shortfall" {
		t.Error("losing staged containers put the pool in shortfall; only failed creations should")
	}
}

// TestRunningSessionWhoseContainerIsGoneFails: the user's session ends
// failed, and the requester hears it through session.failed carrying its
// request_id.
func TestRunningSessionWhoseContainerIsGoneFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auditEveryTick)
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	containerID := e.session(sid).ContainerID

	e.removeBehindGreenroom(containerID)
	ev := e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("session_id", sid)) // validated against its schema
	failed := decode[events.SessionFailed](t, ev)
	wantDetail := "container " + containerID[:12] + " of the running session on agent " + f.agent + ": "
	if failed.Reason != events.ReasonContainerGone || failed.RequestID != rid || !strings.HasPrefix(failed.Detail, wantDetail) {
		t.Errorf("session.failed = %+v, want reason container_gone, request_id %s, detail %q…", failed, rid, wantDetail)
	}
	if h := e.requestIDHeader(ev); h != rid {
		t.Errorf("session.failed carries request id header %q, want %q", h, rid)
	}
	if s := e.session(sid); s.Status != sessions.Failed || !seenRemoved(s.FailureReason) || !s.DestroyedAt.Valid {
		t.Errorf("session = %s, failure_reason %q, destroyed_at %v", s.Status, s.FailureReason, s.DestroyedAt)
	}
	e.waitCounter("greenroom_provisioner_sessions_container_gone_total", map[string]string{"status": "running"}, 1)
}

// TestRunningSessionWhoseContainerExitedFailsAndTheContainerIsRemoved: a
// container killed behind Greenroom's back (say, out of memory) fails its
// session with the exit code, and the dead container is removed.
func TestRunningSessionWhoseContainerExitedFailsAndTheContainerIsRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, auditEveryTick)
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))

	if _, err := e.docker.ContainerKill(e.ctx, e.session(sid).ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("session_id", sid)))
	if failed.Reason != events.ReasonContainerGone || !strings.HasSuffix(failed.Detail, ": exited (code 137)") {
		t.Errorf("session.failed = %+v", failed)
	}
	if s := e.session(sid); s.FailureReason != "container_gone: exited (code 137)" {
		t.Errorf("failure_reason %q", s.FailureReason)
	}
	e.waitFor("the dead container to be removed", 10*time.Second, func() bool {
		return len(e.containers(map[string]string{domain.LabelSession: sid})) == 0
	})
	gone := decode[events.SessionDestroyed](t, e.waitEvent(events.TypeSessionDestroyed, 10*time.Second, dataIs("session_id", sid)))
	if gone.Reason != events.ReasonContainerGone || gone.Cause != events.CauseFailed || gone.RequestID != rid {
		t.Errorf("session.destroyed = %+v, want reason container_gone, cause failed", gone)
	}
}

// TestSessionRecordedWithinGracePeriodIsLeftAlone: a session that changed
// within the grace period is not judged, however its container looks: the
// provisioner may be working on it right now.
func TestSessionRecordedWithinGracePeriodIsLeftAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: service.Config{ContainerAudit: audit.ContainerAuditorConfig{
		Interval: 50 * time.Millisecond, GracePeriod: time.Hour,
	}, EngineWatcher: audit.EngineWatcherConfig{Disabled: true}}})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	e.removeBehindGreenroom(e.session(sid).ContainerID)

	res, err := e.svc.ContainerAuditor.RunOnce(e.ctx)
	if err != nil || res.Checked != 0 || res.Failed != 0 {
		t.Errorf("pass within the grace period = %+v (err %v), want nothing checked", res, err)
	}
	if s := e.session(sid); s.Status != sessions.Running {
		t.Errorf("session is %s, want running until its grace period is over", s.Status)
	}
	// The grace period, and nothing else, held it back.
	res, err = e.newAuditor(-1, nil).RunOnce(e.ctx)
	if err != nil || res.Failed != 1 {
		t.Errorf("pass without a grace period = %+v (err %v), want the session failed", res, err)
	}
}

// TestConcurrentAuditorsFailEachSessionOnce: replicas audit at the same
// time; every session whose container is gone is failed, announced and
// refilled exactly once, and a session whose container runs is left alone.
func TestConcurrentAuditorsFailEachSessionOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noService: true}) // events stay in the outbox
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 0, events.Permissions{})

	alive := e.sessionWithContainer(f, "", sessions.Running, e.startContainer())
	dead := e.startContainer()
	if _, err := e.docker.ContainerKill(e.ctx, dead, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the killed container to have exited", 10*time.Second, func() bool {
		in, err := e.inspect(dead)
		return err == nil && in.State.Status == "exited"
	})
	lost := []string{e.sessionWithContainer(f, "", sessions.Running, dead)}
	for i := range 12 {
		st, pool := sessions.Running, ""
		if i%3 == 0 {
			st, pool = sessions.Staged, cfg
		}
		lost = append(lost, e.sessionWithContainer(f, pool, st, neverExisted()))
	}

	var mu sync.Mutex
	var refills []string
	trigger := func(id string) { mu.Lock(); refills = append(refills, id); mu.Unlock() }
	replicas := []*audit.ContainerAuditor{e.newAuditor(-1, trigger), e.newAuditor(-1, trigger)}
	var total audit.AuditResult
	var wg sync.WaitGroup
	for _, a := range replicas {
		for range 3 {
			wg.Go(func() {
				res, err := a.RunOnce(e.ctx)
				if err != nil {
					t.Errorf("RunOnce: %v", err)
				}
				mu.Lock()
				total.Failed += res.Failed
				total.Removed += res.Removed
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	if total.Failed != len(lost) || total.Removed != 1 {
		t.Errorf("6 passes over 2 replicas failed %d and removed %d, want %d failed and 1 removed", total.Failed, total.Removed, len(lost))
	}
	failedEvents := e.outboxEvents(events.TypeSessionFailed)
	for _, id := range lost {
		if s := e.session(id); s.Status != sessions.Failed || !strings.HasPrefix(s.FailureReason, "container_gone: ") {
			t.Errorf("session %s is %s (%q), want failed as container_gone", id, s.Status, s.FailureReason)
		}
		if n := failedEvents[id]; n != 1 {
			t.Errorf("%d session.failed events for session %s, want 1", n, id)
		}
	}
	if s := e.session(lost[0]); s.FailureReason != "container_gone: exited (code 137)" {
		t.Errorf("killed container seen as %q", s.FailureReason)
	}
	if s := e.session(alive); s.Status != sessions.Running {
		t.Errorf("session with a running container is %s, want running", s.Status)
	}
	if _, err := e.inspect(dead); err == nil {
		t.Errorf("the dead container is still there")
	}
	if want := slices.Repeat([]string{cfg}, 4); !slices.Equal(refills, want) {
		t.Errorf("pool refills triggered %v, want one per lost staged session: %v", refills, want)
	}
}

// TestAssigningAStagedSessionWhoseContainerIsGoneFailsAsContainerGone:
// when the claim comes before the auditor noticed, the assign exec finds
// no container; the requester is told container_gone, not assign_failed.
func TestAssigningAStagedSessionWhoseContainerIsGoneFailsAsContainerGone(t *testing.T) {
	t.Parallel()
	// The auditor's default grace period keeps it out of the way, and the
	// engine watcher is off: the claim comes before anything noticed.
	e := newEnv(t, envOptions{cfg: service.Config{EngineWatcher: audit.EngineWatcherConfig{Disabled: true}}})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
	e.removeBehindGreenroom(e.stagedSessions(cfg)[0].ContainerID)

	claimed, rid := e.claimStaged(f, cfg)
	failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("request_id", rid)))
	if failed.Reason != events.ReasonContainerGone || failed.SessionID != claimed.ID || !strings.Contains(failed.Detail, ": missing; the assign command could not run") {
		t.Errorf("session.failed = %+v", failed)
	}
	if s := e.session(claimed.ID); s.Status != sessions.Failed || s.FailureReason != "container_gone: missing" {
		t.Errorf("session = %s, failure_reason %q", s.Status, s.FailureReason)
	}
	e.waitCounter("greenroom_provisioner_sessions_container_gone_total", map[string]string{"status": "assigning"}, 1)
	e.waitFor("a replacement staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
}

// seenRemoved: a pass may list the container while the removal is still
// under way ("being removed") or after it ended ("missing"); both are a
// removed container.
func seenRemoved(failureReason string) bool {
	return failureReason == "container_gone: missing" || failureReason == "container_gone: being removed"
}

// removeBehindGreenroom removes a container the way `make down` or an
// operator would.
func (e *env) removeBehindGreenroom(containerID string) {
	e.t.Helper()
	if _, err := e.docker.ContainerRemove(e.ctx, containerID, client.ContainerRemoveOptions{Force: true}); err != nil {
		e.t.Fatalf("removing container %s: %v", containerID[:12], err)
	}
}

func (e *env) stagedSessions(configID string) []sessions.Session {
	e.t.Helper()
	var ids []string
	if err := e.db.SelectContext(e.ctx, &ids, `SELECT id FROM sessions WHERE staging_config_id = $1 AND status = 'staged' ORDER BY id`, configID); err != nil {
		e.t.Fatal(err)
	}
	out := make([]sessions.Session, len(ids))
	for i, id := range ids {
		out[i] = e.session(id)
	}
	return out
}

// newAuditor is another replica's container auditor on the test's
// database, removing only the test's orphan containers; grace -1 judges
// every session and container at once.
func (e *env) newAuditor(grace time.Duration, pools command.PoolTrigger) *audit.ContainerAuditor {
	a, _ := e.newAuditorWithRegistry(grace, pools)
	return a
}

// newAuditorWithRegistry is newAuditor with the registry of its metrics.
func (e *env) newAuditorWithRegistry(grace time.Duration, pools command.PoolTrigger) (*audit.ContainerAuditor, *prometheus.Registry) {
	engines := docker.NewEngines()
	e.t.Cleanup(engines.Close)
	reg := prometheus.NewRegistry()
	return audit.NewContainerAuditor(audit.ContainerAuditorConfig{GracePeriod: grace, OrphanLabels: map[string]string{testLabel: e.label}},
		postgres.New(e.db, e.deps.Source()), engines.AsAuditEngines(), command.NewMetrics(reg), reg,
		zaptest.NewLogger(e.t), pools), reg
}

// startContainer starts a demo container carrying the test's labels and
// returns its id.
func (e *env) startContainer() string {
	e.t.Helper()
	resp, err := e.docker.ContainerCreate(e.ctx, client.ContainerCreateOptions{Config: &container.Config{
		Image:  demoImage,
		Env:    []string{"GREENROOM_DEMO_INIT_DELAY=0s"},
		Labels: map[string]string{domain.LabelManaged: "true", testLabel: e.label},
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.docker.ContainerStart(e.ctx, resp.ID, client.ContainerStartOptions{}); err != nil {
		e.t.Fatal(err)
	}
	return resp.ID
}

// neverExisted is a container id no engine has.
func neverExisted() string {
	sum := sha256.Sum256([]byte(uuid.NewString()))
	return hex.EncodeToString(sum[:])
}

// sessionWithContainer inserts a session on f's agent in status st
// (staged in configID's pool, or running on demand) recording containerID.
func (e *env) sessionWithContainer(f fixture, configID string, st sessions.Status, containerID string) string {
	e.t.Helper()
	n := sessions.New{ID: uuid.NewString(), WorkspaceID: f.workspaceID, ZoneID: f.zoneID, AgentID: f.agentID,
		StagingConfigID: configID, Origin: sessions.OriginStaged, Cores: 0.1, MemoryMB: 16}
	if configID == "" {
		n.Origin, n.RequestID, n.UserID = sessions.OriginOnDemand, "req-"+n.ID, f.userID
	}
	if _, err := sessions.Insert(e.ctx, e.db, n); err != nil {
		e.t.Fatal(err)
	}
	if _, err := sessions.Transition(e.ctx, e.db, n.ID, sessions.Provisioning, st, sessions.Change{ContainerID: &containerID}); err != nil {
		e.t.Fatal(err)
	}
	return n.ID
}

// outboxEvents counts the events of eventType waiting in the outbox, by
// session, and checks each against its schema.
func (e *env) outboxEvents(eventType string) map[string]int {
	e.t.Helper()
	var payloads [][]byte
	if err := e.db.SelectContext(e.ctx, &payloads, `SELECT payload FROM outbox WHERE payload->>'type' = $1`, eventType); err != nil {
		e.t.Fatal(err)
	}
	bySession := map[string]int{}
	for _, p := range payloads {
		if err := e.deps.Validator.Validate(p); err != nil {
			e.t.Errorf("%s in the outbox does not match its schema: %v", eventType, err)
		}
		var ev struct {
			Data struct {
				SessionID string `json:"session_id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(p, &ev); err != nil {
			e.t.Fatal(err)
		}
		bySession[ev.Data.SessionID]++
	}
	return bySession
}
