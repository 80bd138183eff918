package command_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/internal/fakeengine"
)

// The fakes below stand for PostgreSQL, Docker and the readiness probe
// in memory, so that a use case's own logic is tested without them: what
// it asks of each, in which order, and what it does with the answers.

const fakeEndpoint = "tcp://10.9.0.1:2375"

// newSession is a session placed on agent-1: staged for pool "pool-1",
// or on demand when stagingConfig is "".
func newSession(stagingConfig string) command.SessionContext {
	sc := command.SessionContext{
		Session: sessions.Session{ID: "session-1", Status: sessions.Provisioning, Origin: sessions.OriginOnDemand,
			RequestID: sql.NullString{String: "request-1", Valid: true}, Cores: 1, MemoryMB: 512},
		Workspace: command.Workspace{Name: "demo", Image: "greenroom/demo-workspace:latest", Enabled: true, Port: 8080,
			ReadinessPath: "/healthz"},
		Zone:  "zone-a",
		Agent: &command.Agent{ID: "agent-1", Name: "agent-1", DockerEndpoint: fakeEndpoint},
	}
	if stagingConfig != "" {
		sc.Session.Origin, sc.Session.RequestID = sessions.OriginStaged, sql.NullString{}
		sc.Session.StagingConfigID = sql.NullString{String: stagingConfig, Valid: true}
		sc.StagingConfig = &command.StagingConfig{ID: stagingConfig, ExpirationHours: 1}
	}
	return sc
}

// fakeStore holds one session and records what was asked of it. Each
// transition checks the status it starts from, as the real one does.
type fakeStore struct {
	mu sync.Mutex
	sc command.SessionContext
	// staleOnRecord, when set, is the status the session moves to (say,
	// failed by the expiry service) just before RecordContainer.
	staleOnRecord sessions.Status
	// calls are the methods called, in order; failures the failures asked
	// for.
	calls    []string
	failures []command.Failure
	// outages is what the last PlaceSession was given.
	outages command.EngineOutages
	// served is what each session.ready said of the zone search; ran the
	// assign steps announced, with the success or the failure; and
	// removedFailed the reasons of the session.destroyed announced for a
	// failed session's container removed.
	served        []domain.ZoneServed
	ran           []events.AssignRan
	removedFailed []string
}

func (s *fakeStore) called(name string) {
	s.calls = append(s.calls, name)
}

// transition moves the session from `from` to `to`, or says it is stale.
func (s *fakeStore) transition(name string, sc *command.SessionContext, from, to sessions.Status, change func(*sessions.Session)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called(name)
	if s.sc.Session.Status != from {
		return fmt.Errorf("%w: %s is %s", sessions.ErrStale, s.sc.Session.ID, s.sc.Session.Status)
	}
	s.sc.Session.Status = to
	if change != nil {
		change(&s.sc.Session)
	}
	sc.Session = s.sc.Session
	return nil
}

func (s *fakeStore) ServerPoolTargets(context.Context, string, []string) ([]command.ServerTarget, bool, error) {
	return nil, false, nil
}

func (s *fakeStore) PlaceSession(_ context.Context, _ string, _ []string, outages command.EngineOutages) (command.SessionContext, *command.Failure, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("PlaceSession")
	s.outages = outages
	if s.sc.Session.Status != sessions.Provisioning {
		return s.sc, nil, command.ErrNotProvisioning
	}
	return s.sc, nil, nil
}

func (s *fakeStore) PlaceOnServer(context.Context, string, domain.ZoneSearch, map[string]string) (command.SessionContext, *command.Failure, error) {
	panic("no server pool here")
}

func (s *fakeStore) LoadSession(context.Context, string) (command.SessionContext, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("LoadSession")
	return s.sc, nil
}

func (s *fakeStore) LoadSessionUser(_ context.Context, id string) (command.SessionUser, error) {
	return command.SessionUser{ID: id, Name: "alice"}, nil
}

func (s *fakeStore) SetAssignSecret(_ context.Context, sc *command.SessionContext, secret sessions.Secret) error {
	return s.transition("SetAssignSecret", sc, sessions.Provisioning, sessions.Provisioning,
		func(x *sessions.Session) { x.AssignSecret = secret })
}

func (s *fakeStore) RecordContainer(_ context.Context, sc *command.SessionContext, containerID string, hostPort int, url, upstreamURL string) error {
	s.mu.Lock()
	if s.staleOnRecord != "" {
		s.sc.Session.Status = s.staleOnRecord
	}
	s.mu.Unlock()
	return s.transition("RecordContainer", sc, sessions.Provisioning, sessions.Provisioning, func(x *sessions.Session) {
		x.ContainerID, x.HostPort, x.URL, x.UpstreamURL = containerID, sql.NullInt64{Int64: int64(hostPort), Valid: true}, url, upstreamURL
	})
}

func (s *fakeStore) MarkStaged(_ context.Context, sc *command.SessionContext, _ time.Time) error {
	return s.transition("MarkStaged", sc, sessions.Provisioning, sessions.Staged, nil)
}

func (s *fakeStore) MarkRunning(_ context.Context, sc *command.SessionContext, served domain.ZoneServed) error {
	err := s.transition("MarkRunning", sc, sessions.Provisioning, sessions.Running, nil)
	if err == nil {
		s.mu.Lock()
		s.served = append(s.served, served)
		s.mu.Unlock()
	}
	return err
}

func (s *fakeStore) CompleteAssign(_ context.Context, sc *command.SessionContext, served domain.ZoneServed, ran events.AssignRan) error {
	err := s.transition("CompleteAssign", sc, sessions.Assigning, sessions.Running, nil)
	if err == nil {
		s.mu.Lock()
		s.served, s.ran = append(s.served, served), append(s.ran, ran)
		s.mu.Unlock()
	}
	return err
}

func (s *fakeStore) MarkFirstLaunched(_ context.Context, sc *command.SessionContext, in sessions.Status, at time.Time) error {
	return s.transition("MarkFirstLaunched", sc, in, in, func(x *sessions.Session) {
		x.FirstLaunchAt = sql.NullTime{Time: at, Valid: true}
	})
}

func (s *fakeStore) FailCreation(ctx context.Context, sc *command.SessionContext, f command.Failure) error {
	return s.fail("FailCreation", sc, sessions.Provisioning, f)
}

func (s *fakeStore) FailSession(_ context.Context, sc *command.SessionContext, from sessions.Status, f command.Failure) error {
	return s.fail("FailSession", sc, from, f)
}

func (s *fakeStore) fail(name string, sc *command.SessionContext, from sessions.Status, f command.Failure) error {
	err := s.transition(name, sc, from, sessions.Failed, func(x *sessions.Session) { x.FailureReason = f.Recorded() })
	if err == nil {
		s.mu.Lock()
		s.failures = append(s.failures, f)
		if f.AssignRan != nil {
			s.ran = append(s.ran, *f.AssignRan)
		}
		s.mu.Unlock()
	}
	return err
}

func (s *fakeStore) BeginDestroy(context.Context, string, string) (command.SessionContext, error) {
	var sc command.SessionContext
	if err := s.transition("BeginDestroy", &sc, s.status(), sessions.Destroying, nil); err != nil {
		return sc, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sc, nil
}

func (s *fakeStore) FinishDestroy(_ context.Context, sc *command.SessionContext, _ string) error {
	return s.transition("FinishDestroy", sc, sessions.Destroying, sessions.Destroyed, nil)
}

func (s *fakeStore) AnnounceFailedRemoved(_ context.Context, _ *command.SessionContext, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("AnnounceFailedRemoved")
	s.removedFailed = append(s.removedFailed, reason)
	return nil
}

func (s *fakeStore) status() sessions.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sc.Session.Status
}

// fakeEngines hands out the fake engine at its endpoint.
type fakeEngines struct{ *fakeengine.Engine }

func (f fakeEngines) For(endpoint string) (command.Engine, error) {
	if err := f.Answers(endpoint); err != nil {
		return nil, err
	}
	return f.Engine, nil
}

// fakeProbe answers every readiness probe with err, and records the
// targets probed.
type fakeProbe struct {
	mu      sync.Mutex
	err     error
	targets []domain.ProbeTarget
}

func (p *fakeProbe) WaitReady(_ context.Context, t domain.ProbeTarget, _ func(context.Context) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets = append(p.targets, t)
	return p.err
}

func (p *fakeProbe) Reach(context.Context, string) error { return nil }

// fakeWorld is a Provisioner over the fakes, with the pools it refilled.
type fakeWorld struct {
	prov   *command.Provisioner
	store  *fakeStore
	engine *fakeengine.Engine
	probe  *fakeProbe

	mu      sync.Mutex
	refills []string
}

func newFakeWorld(t *testing.T, sc command.SessionContext) *fakeWorld {
	w := &fakeWorld{store: &fakeStore{sc: sc}, engine: fakeengine.New(fakeEndpoint), probe: &fakeProbe{}}
	refill := func(id string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.refills = append(w.refills, id)
	}
	w.prov = command.New(command.Config{}, w.store, fakeEngines{w.engine}, w.probe, command.NewMetrics(prometheus.NewRegistry()),
		zaptest.NewLogger(t), command.Pools{Changed: refill})
	return w
}

// provision delivers greenroom.provision.requested for the session.
func (w *fakeWorld) provision(t *testing.T) error {
	t.Helper()
	sc := w.store.sc
	return w.prov.ProvisionSession(context.Background(), events.ProvisionRequested{
		SessionID: sc.Session.ID, RequestID: sc.RequestID(), Origin: sc.Session.Origin, Zones: []string{sc.Zone}})
}

// containers are the session's containers on the agent.
func (w *fakeWorld) containers() []domain.Container {
	list, _ := w.engine.SessionContainers(context.Background(), w.store.sc.Session.ID)
	return list
}

func (w *fakeWorld) refilled() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refills
}
