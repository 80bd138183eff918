package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/internal/fakeengine"
)

const holeEndpoint = "tcp://10.9.0.2:2375"

// twoEndpoints are fakeSessions (on agent-1, at fakeEndpoint) plus an
// agent without sessions at holeEndpoint, listed first; failed receives
// each session failed.
type twoEndpoints struct {
	*fakeSessions
	failed chan string
}

func (s twoEndpoints) ListWatchedAgents(context.Context) ([]command.Agent, error) {
	return []command.Agent{
		{ID: "agent-hole", Name: "agent-hole", DockerEndpoint: holeEndpoint},
		{ID: "agent-1", Name: "agent-1", DockerEndpoint: fakeEndpoint},
	}, nil
}

func (s twoEndpoints) ListContainerAuditCandidates(ctx context.Context, p audit.ListContainerAuditCandidatesParams) ([]audit.ContainerAuditCandidate, error) {
	for _, id := range p.AgentIDs {
		if id == "agent-1" {
			return s.fakeSessions.ListContainerAuditCandidates(ctx, p)
		}
	}
	return nil, nil
}

func (s twoEndpoints) FailContainerGone(ctx context.Context, p audit.FailContainerGoneParams) (command.SessionContext, bool, error) {
	sc, ok, err := s.fakeSessions.FailContainerGone(ctx, p)
	if ok {
		s.failed <- p.Candidate.SessionID
	}
	return sc, ok, err
}

// holeEngines hand out the fake engine at fakeEndpoint, and at
// holeEndpoint call hole.
type holeEngines struct {
	fakeEngines
	hole func() (audit.Engine, error)
}

func (h holeEngines) For(endpoint string) (audit.Engine, error) {
	if endpoint == holeEndpoint {
		return h.hole()
	}
	return h.fakeEngines.For(endpoint)
}

// hangingEngine lists nothing until its context is done.
type hangingEngine struct{ *fakeengine.Engine }

func (hangingEngine) ListByLabels(ctx context.Context, _ map[string]string) ([]domain.Container, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func newTwoEndpointAuditor(t *testing.T, cfg audit.ContainerAuditorConfig, store twoEndpoints, engine *fakeengine.Engine,
	hole func() (audit.Engine, error)) *audit.ContainerAuditor {
	reg := prometheus.NewRegistry()
	return audit.NewContainerAuditor(cfg, store, holeEngines{fakeEngines{engine}, hole}, command.NewMetrics(reg), reg,
		zaptest.NewLogger(t), func(string) {})
}

// An endpoint whose engine does not answer holds up only its own audit: the
// endpoint after it is audited while it is stuck.
func TestAStuckEndpointDoesNotHoldUpTheAuditOfTheOthers(t *testing.T) {
	t.Parallel()
	store := twoEndpoints{fakeSessions: &fakeSessions{}, failed: make(chan string, 1)}
	engine := fakeengine.New(fakeEndpoint)
	store.add("s1", "c1", sessions.Staged, "")
	putContainer(engine, "c1", "s1", "exited", 137, time.Hour)
	entered, release := make(chan struct{}), make(chan struct{})
	// The fallback only ends a test that already failed: with endpoints
	// audited one after another, s1 is never reached while the hole holds.
	giveUp := time.AfterFunc(time.Minute, func() { close(release) })
	defer giveUp.Stop()
	auditor := newTwoEndpointAuditor(t, audit.ContainerAuditorConfig{}, store, engine, func() (audit.Engine, error) {
		close(entered)
		<-release
		return nil, errors.New("docker engine tcp://10.9.0.2:2375 does not answer")
	})

	done := make(chan audit.AuditResult, 1)
	go func() {
		res, _ := auditor.RunOnce(context.Background())
		done <- res
	}()
	<-entered
	select {
	case id := <-store.failed:
		if id != "s1" {
			t.Fatalf("failed %s, want s1", id)
		}
	case <-done:
		t.Fatal("the pass ended before the healthy endpoint was audited")
	}
	select {
	case <-done:
		t.Fatal("the pass ended while an endpoint was stuck")
	default:
	}
	if !giveUp.Stop() {
		t.Fatal("the healthy endpoint was audited only once the stuck one gave up")
	}
	close(release)
	res := <-done
	if want := (audit.AuditResult{Endpoints: 1, Unreachable: 1, Checked: 1, Failed: 1, Removed: 1}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
}

// An engine that stops answering in the middle of a call is given up on
// after EndpointTimeout, so the pass ends and the next can run.
func TestAHangingEndpointIsGivenUpOnAfterItsTimeout(t *testing.T) {
	t.Parallel()
	store := twoEndpoints{fakeSessions: &fakeSessions{}, failed: make(chan string, 1)}
	engine := fakeengine.New(fakeEndpoint)
	store.add("s1", "c1", sessions.Staged, "")
	putContainer(engine, "c1", "s1", "exited", 137, time.Hour)
	auditor := newTwoEndpointAuditor(t, audit.ContainerAuditorConfig{EndpointTimeout: 50 * time.Millisecond}, store, engine,
		func() (audit.Engine, error) { return hangingEngine{engine}, nil })
	res, err := auditor.RunOnce(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the hanging endpoint's deadline", err)
	}
	if want := (audit.AuditResult{Endpoints: 1, Unreachable: 1, Checked: 1, Failed: 1, Removed: 1}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
}
