package service_test

import (
	"os"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// The staging pool numbers of issue 4, end to end through the outbox, the
// bus, the reconciler, Docker and the readiness probe, with the default
// refill concurrency (4) and provision lane (8). The demo image's init
// delay is GREENROOM_BENCH_INIT_DELAY (default 0s). Run:
//
//	go test -run XXX -bench BenchmarkPool -benchtime 3x ./service/

// BenchmarkPoolFillTenFromZero: desired 0 → 10 until the tenth session is
// staged.
func BenchmarkPoolFillTenFromZero(b *testing.B) {
	e, _, cfg := poolBenchEnv(b)
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		e.poolSetDesired(cfg, 10)
		e.waitFor("10 staged sessions", 60*time.Second, func() bool { return len(e.poolStaged(cfg)) == 10 })
		total += e.poolLast(cfg, "staged_at").Sub(start)
		b.StopTimer()
		e.poolSetDesired(cfg, 0)
		e.waitFor("an empty pool", 60*time.Second, func() bool { return len(e.poolContainers(cfg)) == 0 })
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-fill-10/op")
}

// BenchmarkPoolReplacementStagedAfterAssign: a staged session of a full
// pool of 10 is claimed; from the claim's commit until its replacement is
// staged.
func BenchmarkPoolReplacementStagedAfterAssign(b *testing.B) {
	e, f, cfg := poolBenchEnv(b)
	e.poolSetDesired(cfg, 10)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		e.waitFor("10 staged sessions", 60*time.Second, func() bool { return len(e.poolStaged(cfg)) == 10 })
		b.StartTimer()
		claimed, rid := e.claimStaged(f, cfg)
		start := time.Now()
		e.waitFor("the replacement staged", 60*time.Second, func() bool { return len(e.poolStaged(cfg)) == 10 })
		total += e.poolLast(cfg, "staged_at").Sub(start)
		b.StopTimer()
		e.waitEvent(events.TypeSessionReady, 60*time.Second, dataIs("request_id", rid))
		e.emit(events.TypeSessionDestroy, events.SessionDestroy{SessionID: claimed.ID, Reason: "bench"})
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-assign-to-replacement-staged/op")
}

// BenchmarkPoolShrinkTenToZero: desired 10 → 0 until the last container is
// removed (its session destroyed).
func BenchmarkPoolShrinkTenToZero(b *testing.B) {
	e, _, cfg := poolBenchEnv(b)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		e.poolSetDesired(cfg, 10)
		e.waitFor("10 staged sessions", 60*time.Second, func() bool { return len(e.poolStaged(cfg)) == 10 })
		b.StartTimer()
		start := time.Now()
		e.poolSetDesired(cfg, 0)
		e.waitFor("no container", 60*time.Second, func() bool { return len(e.poolContainers(cfg)) == 0 })
		e.waitFor("every session destroyed", 10*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged, sessions.Destroying) == 0 })
		total += e.poolLast(cfg, "destroyed_at").Sub(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-shrink-10-to-0/op")
}

// poolBenchEnv is a provisioner with an agent of 4 cores and a workspace of
// a quarter core, so 16 sessions fit, and an empty staging config.
func poolBenchEnv(b *testing.B) (*env, fixture, string) {
	e := newEnv(b, envOptions{})
	delay := os.Getenv("GREENROOM_BENCH_INIT_DELAY")
	if delay == "" {
		delay = "0s"
	}
	f := e.standardFixture(workspaceOptions{initDelay: delay, cores: 0.25, memoryMB: 64})
	b.Logf("demo image init delay %s", delay)
	return e, f, e.addStagingConfig(f, 0, events.Permissions{})
}

// poolSetDesired is the config service's PATCH of desired_sessions.
func (e *env) poolSetDesired(cfg string, n int) {
	e.t.Helper()
	e.exec(`UPDATE staging_configs SET desired_sessions = $2, updated_at = now() WHERE id = $1`, cfg, n)
	e.poolConfigChanged(cfg, "updated")
}

// poolLast is the latest value of a timestamp column over cfg's sessions.
func (e *env) poolLast(cfg, column string) time.Time {
	e.t.Helper()
	var at time.Time
	if err := e.db.GetContext(e.ctx, &at, `SELECT max(`+column+`) FROM sessions WHERE staging_config_id = $1`, cfg); err != nil {
		e.t.Fatal(err)
	}
	return at
}
