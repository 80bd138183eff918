package service_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// hookWorkspace declares the demo image's assign hook beside an assign
// exec that would fail: when both are declared the hook runs and the exec
// is skipped.
var hookWorkspace = workspaceOptions{execConfig: `{"assign": {"cmd": ["/demo-workspace", "assign", "--bogus"], "environment": {"TEAM": "{username}-team"}}}`}

func (e *env) withAssignHook(f fixture) {
	e.exec(`UPDATE workspaces SET assign_hook = '{"path": "/.greenroom/assign", "timeout": "5s"}' WHERE id = $1`, f.workspaceID)
}

func TestAssignHookHandsAStagedSessionOverWithoutAnExec(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(hookWorkspace)
	e.withAssignHook(f)
	cfg := e.addStagingConfig(f, 1, events.Permissions{AllowAudio: true})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })

	claimed, rid := e.claimStaged(f, cfg)
	ready := decode[events.SessionReady](t, e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid)))
	if ready.SessionID != claimed.ID || ready.User != f.user {
		t.Fatalf("session.ready = %+v", ready)
	}
	ran := decode[events.AssignRan](t, e.waitEvent(events.TypeSessionAssignRan, 10*time.Second, dataIs("request_id", rid)))
	if ran.SessionID != claimed.ID || ran.Method != events.AssignMethodHook || !ran.OK {
		t.Errorf("session.assign_ran = %+v, want the assign hook, ok", ran)
	}
	if code, body := httpGet(t, claimed.UpstreamURL); code != 200 || !strings.Contains(body, "Assigned to "+f.user) {
		t.Errorf("the hook did not hand the session over: %d\n%s", code, body)
	}
	if _, n := e.histogram("greenroom_provisioner_assign_exec_seconds"); n != 0 {
		t.Errorf("%d assign execs ran; the hook replaces the exec", n)
	}
	sum, n := e.histogram("greenroom_provisioner_assign_hook_seconds")
	if n != 1 {
		t.Fatalf("assign hook histogram has %d observations, want 1", n)
	}
	t.Logf("assign hook took %s", time.Duration(sum*float64(time.Second)).Round(10*time.Microsecond))
	// Its connection was opened when the container was staged.
	if reused := e.counter("greenroom_provisioner_assign_hook_connections_total", map[string]string{"reused": "true"}); reused != 1 {
		t.Errorf("the hand-off reused %v connections warmed at staging, want 1", reused)
	}

	// The secret is the container's own, given at creation, and never
	// leaves through an event.
	secret := e.session(claimed.ID).AssignSecret.Reveal()
	if len(secret) != 64 {
		t.Fatalf("assign secret %d characters, want 64 hex", len(secret))
	}
	in, err := e.inspect(claimed.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(in.Config.Env, "GREENROOM_ASSIGN_SECRET="+secret) {
		t.Error("the container was not given its secret")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.events {
		raw, _ := json.Marshal(ev)
		if strings.Contains(string(raw), secret) {
			t.Errorf("event %s carries the assign secret", ev.Type)
		}
	}
}

func TestAssignHookThatRefusesFailsTheAssignment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(hookWorkspace)
	e.withAssignHook(f)
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
	// The provisioner now holds another secret than its container: the
	// container's hook answers 401.
	e.exec(`UPDATE sessions SET assign_secret = 'not-the-containers' WHERE staging_config_id = $1 AND status = 'staged'`, cfg)

	claimed, rid := e.claimStaged(f, cfg)
	failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("request_id", rid)))
	if failed.Reason != events.ReasonAssignFailed || !strings.Contains(failed.Detail, "answered 401") {
		t.Errorf("session.failed = %+v, want assign_failed saying the hook answered 401", failed)
	}
	if strings.Contains(failed.Detail, "not-the-containers") {
		t.Error("the failure quotes the secret")
	}
	ran := decode[events.AssignRan](t, e.waitEvent(events.TypeSessionAssignRan, 10*time.Second, dataIs("request_id", rid)))
	if ran.Method != events.AssignMethodHook || ran.OK || !strings.Contains(ran.Detail, "answered 401") || strings.Contains(ran.Detail, "not-the-containers") {
		t.Errorf("session.assign_ran = %+v, want the assign hook, failed, saying it answered 401 without the secret", ran)
	}
	e.waitFor("the failed session's container removed", 30*time.Second, func() bool {
		return len(e.containers(map[string]string{domain.LabelSession: claimed.ID})) == 0
	})
}
