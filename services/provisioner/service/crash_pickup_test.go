package service_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	libbus "github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/probe"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// errKilled is what every call of a killed provisioner gets: from the
// kill on, nothing it does reaches PostgreSQL or Docker, as after a kill -9.
var errKilled = errors.New("provisioner killed")

// killSwitch freezes a provisioner at one call (by name) and kills it
// there: the call waits until kill, and then it and every call after it
// fail with errKilled.
type killSwitch struct {
	at      string
	reached chan struct{} // closed when the call named at is reached
	killed  chan struct{} // closed by kill
}

func newKillSwitch(at string) *killSwitch {
	return &killSwitch{at: at, reached: make(chan struct{}), killed: make(chan struct{})}
}

func (k *killSwitch) kill() { close(k.killed) }

// gate is called before each call of the provisioner, named.
func (k *killSwitch) gate(call string) error {
	select {
	case <-k.killed:
		return errKilled
	default:
	}
	if call == k.at {
		close(k.reached)
		<-k.killed
		return errKilled
	}
	return nil
}

// killableStore is the provisioner's PostgreSQL store behind a kill switch.
type killableStore struct {
	command.SessionStore
	k *killSwitch
}

func (s killableStore) ServerPoolTargets(ctx context.Context, id string, zones []string) ([]command.ServerTarget, bool, error) {
	if err := s.k.gate("ServerPoolTargets"); err != nil {
		return nil, false, err
	}
	return s.SessionStore.ServerPoolTargets(ctx, id, zones)
}

func (s killableStore) PlaceSession(ctx context.Context, id string, zones []string, o command.EngineOutages) (command.SessionContext, *command.Failure, error) {
	if err := s.k.gate("PlaceSession"); err != nil {
		return command.SessionContext{}, nil, err
	}
	return s.SessionStore.PlaceSession(ctx, id, zones, o)
}

func (s killableStore) LoadSession(ctx context.Context, id string) (command.SessionContext, error) {
	if err := s.k.gate("LoadSession"); err != nil {
		return command.SessionContext{}, err
	}
	return s.SessionStore.LoadSession(ctx, id)
}

func (s killableStore) LoadSessionUser(ctx context.Context, id string) (command.SessionUser, error) {
	if err := s.k.gate("LoadSessionUser"); err != nil {
		return command.SessionUser{}, err
	}
	return s.SessionStore.LoadSessionUser(ctx, id)
}

func (s killableStore) RecordContainer(ctx context.Context, sc *command.SessionContext, id string, port int, url, upstream string) error {
	if err := s.k.gate("RecordContainer"); err != nil {
		return err
	}
	return s.SessionStore.RecordContainer(ctx, sc, id, port, url, upstream)
}

func (s killableStore) MarkFirstLaunched(ctx context.Context, sc *command.SessionContext, in sessions.Status, at time.Time) error {
	if err := s.k.gate("MarkFirstLaunched"); err != nil {
		return err
	}
	return s.SessionStore.MarkFirstLaunched(ctx, sc, in, at)
}

func (s killableStore) MarkRunning(ctx context.Context, sc *command.SessionContext, served domain.ZoneServed) error {
	if err := s.k.gate("MarkRunning"); err != nil {
		return err
	}
	return s.SessionStore.MarkRunning(ctx, sc, served)
}

func (s killableStore) FailCreation(ctx context.Context, sc *command.SessionContext, f command.Failure) error {
	if err := s.k.gate("FailCreation"); err != nil {
		return err
	}
	return s.SessionStore.FailCreation(ctx, sc, f)
}

// killableEngines are the Docker engines behind a kill switch.
type killableEngines struct {
	engines command.Engines
	k       *killSwitch
}

func (e killableEngines) For(endpoint string) (command.Engine, error) {
	if err := e.k.gate("For"); err != nil {
		return nil, err
	}
	eng, err := e.engines.For(endpoint)
	if err != nil {
		return nil, err
	}
	return killableEngine{Engine: eng, k: e.k}, nil
}

type killableEngine struct {
	command.Engine
	k *killSwitch
}

func (e killableEngine) SessionContainers(ctx context.Context, sessionID string) ([]domain.Container, error) {
	if err := e.k.gate("SessionContainers"); err != nil {
		return nil, err
	}
	return e.Engine.SessionContainers(ctx, sessionID)
}

func (e killableEngine) Inspect(ctx context.Context, id string) (domain.Container, error) {
	if err := e.k.gate("Inspect"); err != nil {
		return domain.Container{}, err
	}
	return e.Engine.Inspect(ctx, id)
}

func (e killableEngine) Create(ctx context.Context, spec domain.ContainerSpec) (string, error) {
	if err := e.k.gate("Create"); err != nil {
		return "", err
	}
	return e.Engine.Create(ctx, spec)
}

func (e killableEngine) Upload(ctx context.Context, id string, u domain.Upload) error {
	if err := e.k.gate("Upload"); err != nil {
		return err
	}
	return e.Engine.Upload(ctx, id, u)
}

func (e killableEngine) Start(ctx context.Context, id string) error {
	if err := e.k.gate("Start"); err != nil {
		return err
	}
	return e.Engine.Start(ctx, id)
}

func (e killableEngine) Exec(ctx context.Context, id string, spec domain.ExecSpec) (domain.ExecResult, error) {
	if err := e.k.gate("Exec"); err != nil {
		return domain.ExecResult{}, err
	}
	return e.Engine.Exec(ctx, id, spec)
}

func (e killableEngine) Remove(ctx context.Context, id string) error {
	if err := e.k.gate("Remove"); err != nil {
		return err
	}
	return e.Engine.Remove(ctx, id)
}

func (e killableEngine) RemoveSession(ctx context.Context, sessionID, containerID string) (int, error) {
	if err := e.k.gate("RemoveSession"); err != nil {
		return 0, err
	}
	return e.Engine.RemoveSession(ctx, sessionID, containerID)
}

// killableProbe is the readiness probe behind a kill switch.
type killableProbe struct {
	command.ReadinessProbe
	k *killSwitch
}

func (p killableProbe) WaitReady(ctx context.Context, t domain.ProbeTarget, alive func(context.Context) error) error {
	if err := p.k.gate("WaitReady"); err != nil {
		return err
	}
	return p.ReadinessProbe.WaitReady(ctx, t, alive)
}

// provisionUntilKilled runs greenroom.provision.requested of req on a
// provisioner of its own (tuned by cfg; the real store, engines and probe,
// as another replica), kills it when it reaches the call named at, and
// returns once it is dead: whatever it made up to that call is left as it
// was.
func (e *env) provisionUntilKilled(req events.ProvisionRequested, at string, cfg command.Config) {
	e.t.Helper()
	k := newKillSwitch(at)
	engines := docker.NewEngines()
	defer engines.Close()
	log := zaptest.NewLogger(e.t, zaptest.Level(zapcore.ErrorLevel)).Named("killed")
	cfg.ExtraLabels = map[string]string{testLabel: e.label}
	prov := command.New(cfg,
		killableStore{SessionStore: postgres.New(e.db, "greenroom/provisioner"), k: k},
		killableEngines{engines: engines.AsCommandEngines(), k: k}, killableProbe{ReadinessProbe: probe.New(probe.Config{}), k: k},
		command.NewMetrics(prometheus.NewRegistry()), log, command.Pools{})
	done := make(chan error, 1)
	go func() { done <- prov.ProvisionSession(e.ctx, req) }()
	select {
	case <-k.reached:
	case err := <-done:
		e.t.Fatalf("the provisioner to kill finished (%v) without reaching %s", err, at)
	case <-time.After(60 * time.Second):
		e.t.Fatalf("the provisioner to kill did not reach %s within 60 s", at)
	}
	k.kill()
	// What it returns no longer matters: nothing it did after the kill
	// reached anything.
	<-done
}

// insertOnDemand inserts an on-demand session in provisioning, as the
// assigner does, and returns its provision.requested without emitting it:
// the test decides who gets it.
func (e *env) insertOnDemand(f fixture) events.ProvisionRequested {
	e.t.Helper()
	req := events.ProvisionRequested{RequestID: "req-" + uuid.NewString(), SessionID: uuid.NewString(),
		Workspace: f.wsName, Zones: []string{f.zone}, Origin: sessions.OriginOnDemand}
	var cores float64
	var mem int
	if err := e.db.QueryRowContext(e.ctx, `SELECT cores, memory_mb FROM workspaces WHERE id = $1`, f.workspaceID).Scan(&cores, &mem); err != nil {
		e.t.Fatal(err)
	}
	if _, err := sessions.Insert(e.ctx, e.db, sessions.New{
		ID: req.SessionID, RequestID: req.RequestID, WorkspaceID: f.workspaceID, ZoneID: f.zoneID, UserID: f.userID,
		Origin: sessions.OriginOnDemand, Cores: cores, MemoryMB: mem,
	}); err != nil {
		e.t.Fatal(err)
	}
	return req
}

// deliverRequest puts req on the bus, as the assigner's relay does, or
// as JetStream redelivers a request whose provisioner died before acking
// it: the provisioner that is alive gets it.
func (e *env) deliverRequest(req events.ProvisionRequested) {
	e.t.Helper()
	ev, err := events.New("greenroom/assigner", events.TypeProvisionRequested, req)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := libbus.NewPublisher(e.deps.JS, e.deps.Validator).Publish(e.ctx, events.TypeProvisionRequested, ev, req.RequestID); err != nil {
		e.t.Fatalf("publishing provision.requested: %v", err)
	}
}

// Issue (reliability): a provisioner killed half-way through making an
// on-demand session's container leaves the session in provisioning, and
// maybe a container created but not started, or started but not recorded,
// or recorded but not ready. The redelivered request, handled by another
// provisioner, finishes that session: one container at the end (the
// started one reused, a created one replaced, none leaked), and the
// requester hears exactly one session.ready and no session.failed.
func TestRedeliveredProvisionRequestFinishesWhatAKilledProvisionerLeft(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{cores: 0.25, memoryMB: 64, initDelay: "500ms"})
	for _, tc := range []struct {
		// killedAt is the call the first provisioner died at.
		killedAt string
		// left is the state of the container it left: "" (none),
		// "created" or "running".
		left string
		// recorded says whether the session row names that container.
		recorded bool
	}{
		{killedAt: "Create", left: ""},                             // placed, nothing made
		{killedAt: "Upload", left: "created"},                      // created, its files not written
		{killedAt: "Start", left: "created"},                       // created, never started
		{killedAt: "RecordContainer", left: "running"},             // started, not recorded
		{killedAt: "WaitReady", left: "running", recorded: true},   // recorded, not ready
		{killedAt: "MarkRunning", left: "running", recorded: true}, // ready, not announced
	} {
		name := "killed at " + tc.killedAt
		ws := f
		if tc.killedAt == "Upload" {
			// Only a container with files to write (a home directory
			// from a volume mapping) uploads anything.
			ws.workspaceID = e.addWorkspace("uploads", workspaceOptions{cores: 0.25, memoryMB: 64, initDelay: "500ms"})
			ws.wsName = "uploads"
			e.exec(`UPDATE workspaces SET volume_mappings = $1 WHERE id = $2`,
				fmt.Sprintf(`{%q: {"bind": "/home/kasm-user/data", "mode": "rw", "uid": 1000, "gid": 1000}}`, t.TempDir()), ws.workspaceID)
		}
		req := e.insertOnDemand(ws)
		e.provisionUntilKilled(req, tc.killedAt, command.Config{})

		// What the killed provisioner left.
		s := e.session(req.SessionID)
		if s.Status != sessions.Provisioning || !s.AgentID.Valid {
			t.Fatalf("%s: session is %s on agent %v, want provisioning and placed", name, s.Status, s.AgentID)
		}
		left := e.containers(map[string]string{domain.LabelSession: req.SessionID})
		var leftID string
		switch {
		case tc.left == "" && len(left) != 0:
			t.Fatalf("%s: %d containers left, want none", name, len(left))
		case tc.left != "" && (len(left) != 1 || string(left[0].State) != tc.left):
			t.Fatalf("%s: containers left %+v, want one %s", name, left, tc.left)
		case tc.left != "":
			leftID = left[0].ID
		}
		if got := s.ContainerID != ""; got != tc.recorded || (got && s.ContainerID != leftID) {
			t.Fatalf("%s: session records container %q, want recorded=%v (%q)", name, s.ContainerID, tc.recorded, leftID)
		}

		// The request comes again, to the provisioner that is alive.
		e.deliverRequest(req)
		ready := decode[events.SessionReady](t, e.waitEvent(events.TypeSessionReady, 60*time.Second, dataIs("request_id", req.RequestID)))
		e.waitIdle()

		s = e.session(req.SessionID)
		if s.Status != sessions.Running || s.ContainerID == "" || ready.ContainerID != s.ContainerID || ready.SessionID != req.SessionID {
			t.Errorf("%s: session %s with container %q, session.ready %+v; want running with the container announced", name, s.Status, s.ContainerID, ready)
		}
		now := e.containers(map[string]string{domain.LabelSession: req.SessionID})
		if len(now) != 1 || now[0].ID != s.ContainerID || string(now[0].State) != "running" {
			t.Errorf("%s: the session's containers are %+v, want exactly its running container %s", name, now, domain.ShortID(s.ContainerID))
		}
		switch tc.left {
		case "running":
			if s.ContainerID != leftID {
				t.Errorf("%s: container %s replaced by %s, want the running one reused", name, domain.ShortID(leftID), domain.ShortID(s.ContainerID))
			}
		case "created":
			if s.ContainerID == leftID {
				t.Errorf("%s: the never-started container %s was reused", name, domain.ShortID(leftID))
			}
		}
		if code, _ := httpGet(t, s.UpstreamURL); code != 200 {
			t.Errorf("%s: GET %s = %d, want the session's container answering", name, s.UpstreamURL, code)
		}
		if n := e.countEvents(events.TypeSessionReady, dataIs("request_id", req.RequestID)); n != 1 {
			t.Errorf("%s: %d session.ready for the request, want 1", name, n)
		}
		if n := e.countEvents(events.TypeSessionFailed, dataIs("request_id", req.RequestID)); n != 0 {
			t.Errorf("%s: %d session.failed for the request, want none", name, n)
		}
		t.Logf("%s (left %q, recorded %v): finished by the redelivery with container %s", name, tc.left, tc.recorded, domain.ShortID(s.ContainerID))
	}
}

// A provisioner killed after failing a session it could not finish (its
// container never became ready), before it removed the container, leaves
// a failed session with a running container. The redelivered request
// removes that container and announces nothing more: the requester heard
// session.failed once, and never hears session.ready.
func TestRedeliveredProvisionRequestRemovesWhatAKilledProvisionerFailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{cores: 0.25, memoryMB: 64, initDelay: "1h"})
	req := e.insertOnDemand(f)
	e.provisionUntilKilled(req, "RemoveSession", command.Config{ReadinessTimeout: time.Second})

	s := e.session(req.SessionID)
	left := e.containers(map[string]string{domain.LabelSession: req.SessionID})
	if s.Status != sessions.Failed || len(left) != 1 || left[0].ID != s.ContainerID {
		t.Fatalf("killed provisioner left session %s (container %q) and containers %+v; want it failed with its container left", s.Status, s.ContainerID, left)
	}

	e.deliverRequest(req)
	e.waitIdle()
	if now := e.containers(map[string]string{domain.LabelSession: req.SessionID}); len(now) != 0 {
		t.Errorf("containers %+v left after the redelivery, want none", now)
	}
	if s := e.session(req.SessionID); s.Status != sessions.Failed {
		t.Errorf("session is %s after the redelivery, want failed", s.Status)
	}
	e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("request_id", req.RequestID))
	if n := e.countEvents(events.TypeSessionFailed, dataIs("request_id", req.RequestID)); n != 1 {
		t.Errorf("%d session.failed for the request, want 1", n)
	}
	if n := e.countEvents(events.TypeSessionReady, dataIs("request_id", req.RequestID)); n != 0 {
		t.Errorf("%d session.ready for the request, want none", n)
	}
}
