package audit_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/internal/fakeengine"
)

// The fakes below stand for PostgreSQL and one Docker engine in memory,
// so that the audit's own judgment is tested without them.

const fakeEndpoint = "tcp://10.9.0.1:2375"

// fakeSessions are sessions on agent-1, by id, with the failures asked
// for.
type fakeSessions struct {
	mu       sync.Mutex
	sessions map[string]*audit.ContainerAuditCandidate
	failed   []audit.FailContainerGoneParams
	// removedFailed are the reasons of the session.destroyed announced
	// for failed sessions whose container was removed; removedOrphans
	// the container.removed announced.
	removedFailed  []string
	removedOrphans []events.ContainerRemoved
	// heartbeats are the endpoints whose heartbeat was recorded, in order.
	heartbeats []string
}

// add puts a session on agent-1 recording containerID, in status st, of
// pool stagingConfig ("" for none).
func (s *fakeSessions) add(id, containerID string, st sessions.Status, stagingConfig string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions == nil {
		s.sessions = map[string]*audit.ContainerAuditCandidate{}
	}
	s.sessions[id] = &audit.ContainerAuditCandidate{SessionID: id, AgentID: "agent-1", AgentName: "agent-1",
		ContainerID: containerID, Status: st, StagingConfigID: sql.NullString{String: stagingConfig, Valid: stagingConfig != ""}}
}

func (s *fakeSessions) RecordHeartbeat(_ context.Context, endpoint string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.heartbeats = append(s.heartbeats, endpoint)
	return nil
}

func (s *fakeSessions) ListWatchedAgents(context.Context) ([]command.Agent, error) {
	return []command.Agent{{ID: "agent-1", Name: "agent-1", DockerEndpoint: fakeEndpoint}}, nil
}

func (s *fakeSessions) ListContainerAuditCandidates(context.Context, audit.ListContainerAuditCandidatesParams) ([]audit.ContainerAuditCandidate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.ContainerAuditCandidate
	for _, c := range s.sessions {
		if c.Status == sessions.Staged || c.Status == sessions.Assigning || c.Status == sessions.Running {
			out = append(out, *c)
		}
	}
	return out, nil
}

func (s *fakeSessions) GetContainerAuditCandidate(_ context.Context, id string) (audit.ContainerAuditCandidate, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.sessions[id]
	if !ok {
		return audit.ContainerAuditCandidate{}, false, nil
	}
	return *c, true, nil
}

func (s *fakeSessions) FailContainerGone(_ context.Context, p audit.FailContainerGoneParams) (command.SessionContext, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.sessions[p.Candidate.SessionID]
	if c.Status != p.Candidate.Status || c.ContainerID != p.Candidate.ContainerID {
		return command.SessionContext{}, false, nil
	}
	c.Status = sessions.Failed
	s.failed = append(s.failed, p)
	return command.SessionContext{}, true, nil
}

func (s *fakeSessions) ReapOrphans(ctx context.Context, _ audit.ReapOrphansParams, reap func(context.Context) error) error {
	return reap(ctx)
}

func (s *fakeSessions) ListSessionStatuses(_ context.Context, ids []string) ([]audit.SessionStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.SessionStatus
	for _, id := range ids {
		if c, ok := s.sessions[id]; ok {
			out = append(out, audit.SessionStatus{SessionID: id, Status: c.Status})
		}
	}
	return out, nil
}

func (s *fakeSessions) AnnounceFailedRemoved(_ context.Context, _ *command.SessionContext, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removedFailed = append(s.removedFailed, reason)
	return nil
}

func (s *fakeSessions) AnnounceContainerRemoved(_ context.Context, r events.ContainerRemoved) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removedOrphans = append(s.removedOrphans, r)
	return nil
}

// fakeEngines hands out the fake engine at its endpoint.
type fakeEngines struct{ *fakeengine.Engine }

func (f fakeEngines) For(endpoint string) (audit.Engine, error) {
	if err := f.Answers(endpoint); err != nil {
		return nil, err
	}
	return f.Engine, nil
}

// putContainer adds to engine a managed container of session sessionID,
// in state, created age ago.
func putContainer(engine *fakeengine.Engine, id, sessionID, state string, exitCode int, age time.Duration) {
	engine.Put(domain.Container{ID: id, State: state, ExitCode: exitCode, Created: time.Now().Add(-age),
		Labels: map[string]string{domain.LabelManaged: "true", domain.LabelSession: sessionID, domain.LabelAgent: "agent-1"}})
}

// newFakeAuditor is an auditor over store and engine; refilled gets the
// pools it asks to refill.
func newFakeAuditor(t *testing.T, store *fakeSessions, engine *fakeengine.Engine, refilled *[]string) *audit.ContainerAuditor {
	reg := prometheus.NewRegistry()
	return audit.NewContainerAuditor(audit.ContainerAuditorConfig{}, store, fakeEngines{engine}, command.NewMetrics(reg), reg,
		zaptest.NewLogger(t), func(id string) { *refilled = append(*refilled, id) })
}

// containerGone is the failure the audit records for what it saw.
func containerGone(seen string) string {
	return events.RecordedFailure(events.ReasonContainerGone, seen)
}
