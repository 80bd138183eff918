package service_test

import (
	"os"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// BenchmarkOnDemandSession measures a user's on-demand request until its
// session.ready is written: placement, docker create + start, the
// readiness probe of the demo image and the transition. The demo image's
// init delay is GREENROOM_BENCH_INIT_DELAY (default 0s; the image's own
// default is 3s).
func BenchmarkOnDemandSession(b *testing.B) {
	e := newEnv(b, envOptions{})
	delay := os.Getenv("GREENROOM_BENCH_INIT_DELAY")
	if delay == "" {
		delay = "0s"
	}
	f := e.standardFixture(workspaceOptions{initDelay: delay, cores: 0.5, memoryMB: 64})
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
		ev := e.waitEvent(events.TypeSessionReady, 60*time.Second, dataIs("request_id", rid))
		total += ev.Time.Sub(start)
		e.emit(events.TypeSessionDestroy, events.SessionDestroy{SessionID: sid, Reason: "bench"})
		e.waitEvent(events.TypeSessionDestroyed, 60*time.Second, dataIs("session_id", sid))
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready/op")
	sum, n := e.histogram("greenroom_provisioner_container_create_seconds")
	b.ReportMetric(sum*1000/float64(n), "ms-create/op")
	sum, n = e.histogram("greenroom_provisioner_readiness_seconds")
	b.ReportMetric(sum*1000/float64(n), "ms-readiness/op")
}

// BenchmarkStagedAssign measures a claim of a staged session until its
// session.ready is written: the assign exec in the running container and
// the transition. Refilling the pool between claims is not timed.
func BenchmarkStagedAssign(b *testing.B) {
	e := newEnv(b, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s", cores: 0.5, memoryMB: 64})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		e.waitFor("a staged session", 60*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
		b.StartTimer()
		start := time.Now()
		s, rid := e.claimStaged(f, cfg)
		ev := e.waitEvent(events.TypeSessionReady, 60*time.Second, dataIs("request_id", rid))
		total += ev.Time.Sub(start)
		b.StopTimer()
		e.emit(events.TypeSessionDestroy, events.SessionDestroy{SessionID: s.ID, Reason: "bench"})
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-claim-to-ready/op")
	sum, n := e.histogram("greenroom_provisioner_assign_exec_seconds")
	b.ReportMetric(sum*1000/float64(n), "ms-assign-exec/op")
}
