package audit_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/internal/fakeengine"
)

// stuckEngine is the fake engine with an event stream that stays open
// and a ping that can be made to hang, as an engine's does when the
// daemon is stuck but its socket still holds the stream.
type stuckEngine struct {
	*fakeengine.Engine
	hung atomic.Bool
}

func (e *stuckEngine) Ping(ctx context.Context) error {
	if e.hung.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (e *stuckEngine) ContainerEvents(ctx context.Context, _ audit.ContainerEventsOptions) (<-chan audit.ContainerEvent, <-chan error) {
	errs := make(chan error, 1)
	go func() {
		<-ctx.Done()
		errs <- ctx.Err()
	}()
	return nil, errs
}

type stuckEngines struct{ e *stuckEngine }

func (h stuckEngines) For(endpoint string) (audit.Engine, error) {
	if err := h.e.Answers(endpoint); err != nil {
		return nil, err
	}
	return h.e, nil
}

// healthLog records what the watcher reports of each engine.
type healthLog struct {
	mu      sync.Mutex
	reports []string
}

func (h *healthLog) Answered(string) { h.add("answered") }
func (h *healthLog) Failed(string, error) {
	h.add("failed")
}
func (h *healthLog) add(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reports = append(h.reports, s)
}
func (h *healthLog) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reports) == 0 {
		return ""
	}
	return h.reports[len(h.reports)-1]
}

// While its event stream is open, a watched engine is pinged every
// heartbeat and each answer is recorded as its agents' heartbeat; an
// engine that stops answering is reported down (placement passes it
// over) and its stream closed, and once it answers again it is up and
// its heartbeats go on.
func TestHeartbeatsAreRecordedAndAHungEngineIsReportedDown(t *testing.T) {
	store := &fakeSessions{}
	engine := &stuckEngine{Engine: fakeengine.New(fakeEndpoint)}
	var refilled []string
	auditor := newFakeAuditor(t, store, engine.Engine, &refilled)
	health := &healthLog{}
	w := audit.NewEngineWatcher(audit.EngineWatcherConfig{Heartbeat: 20 * time.Millisecond, PingTimeout: 50 * time.Millisecond,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond},
		store, stuckEngines{engine}, auditor, prometheus.NewRegistry(), zaptest.NewLogger(t)).ReportEngineHealth(health)
	w.TestSignals.Init()
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	w.TestSignals.Connected.WaitOrTimeout(t, 10*time.Second)
	for range 3 { // the ping before the stream, then beats while it is open
		if ep := w.TestSignals.Heartbeat.WaitOrTimeout(t, 10*time.Second); ep != fakeEndpoint {
			t.Fatalf("heartbeat of %s, want %s", ep, fakeEndpoint)
		}
	}
	store.mu.Lock()
	beats := slices.Clone(store.heartbeats)
	store.mu.Unlock()
	if len(beats) < 3 || slices.ContainsFunc(beats, func(ep string) bool { return ep != fakeEndpoint }) {
		t.Fatalf("heartbeats recorded %v", beats)
	}

	engine.hung.Store(true)
	if ep := w.TestSignals.Lost.WaitOrTimeout(t, 10*time.Second); ep != fakeEndpoint {
		t.Fatalf("lost %s, want %s", ep, fakeEndpoint)
	}
	if got := health.last(); got != "failed" {
		t.Errorf("a hung engine was last reported %q, want failed", got)
	}

	engine.hung.Store(false)
	w.TestSignals.Connected.WaitOrTimeout(t, 10*time.Second)
	w.TestSignals.Heartbeat.WaitOrTimeout(t, 10*time.Second)
	if got := health.last(); got != "answered" {
		t.Errorf("an engine answering again was last reported %q, want answered", got)
	}
}
