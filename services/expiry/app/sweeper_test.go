package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// sweeper returns a sweeper over timers whose clock stands at now.
func sweeper(t *testing.T, timers app.SessionTimers, now time.Time, cfg app.SweeperConfig) *app.Sweeper {
	t.Helper()
	cfg.Now = func() time.Time { return now }
	s, err := app.NewSweeper(cfg, timers, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("NewSweeper: %v", err)
	}
	return s
}

// counter reads a counter of the sweeper's metrics, by name and reason
// label ("" for none); 0 before anything counted.
func counter(t *testing.T, s *app.Sweeper, name, reason string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collectors()...)
	v, _ := apptest.Metric(t, reg, name, map[string]string{"reason": reason})
	return v
}

func TestSweeperConfigDefaults(t *testing.T) {
	s := sweeper(t, newFakeTimers(nil), time.Now(), app.SweeperConfig{})
	cfg := s.Config()
	if cfg.Interval != app.SweeperIntervalDefault || cfg.Interval < time.Second || cfg.Interval > 5*time.Second {
		t.Errorf("Interval = %s, want the default %s within 1s–5s", cfg.Interval, app.SweeperIntervalDefault)
	}
	if cfg.ProvisioningTimeout != 2*time.Minute {
		t.Errorf("ProvisioningTimeout = %s, want 2m", cfg.ProvisioningTimeout)
	}
	if app.AssignTimeoutDefault != 2*time.Minute || cfg.AssignTimeout != app.AssignTimeoutDefault {
		t.Errorf("AssignTimeout = %s, want the default 2m", cfg.AssignTimeout)
	}
	if app.DestroyTimeoutDefault != 2*time.Minute || cfg.DestroyTimeout != app.DestroyTimeoutDefault {
		t.Errorf("DestroyTimeout = %s, want the default 2m", cfg.DestroyTimeout)
	}
	if cfg.BatchSize != app.SweeperBatchSizeDefault || cfg.Source != app.SourceDefault {
		t.Errorf("BatchSize, Source = %d, %q", cfg.BatchSize, cfg.Source)
	}
}

func TestSweeperConfigRejectsNegativeValues(t *testing.T) {
	for name, cfg := range map[string]app.SweeperConfig{
		"interval":  {Interval: -time.Second},
		"timeout":   {ProvisioningTimeout: -time.Second},
		"assign":    {AssignTimeout: -time.Second},
		"destroy":   {DestroyTimeout: -time.Second},
		"batchsize": {BatchSize: -1},
	} {
		if _, err := app.NewSweeper(cfg, nil, nil); err == nil {
			t.Errorf("%s: NewSweeper accepted %+v", name, cfg)
		}
	}
}

// Each timer is asked once per pass for the sessions due at its own
// cut-off (a timeout counts back from the pass's time, a deadline is due
// at it), in a fixed order: the time limit before the keepalive, so that
// a session past both ends for its time limit.
func TestEachTimerIsAskedInOrderForTheSessionsDueAtItsCutoff(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	timers := newFakeTimers(nil)
	s := sweeper(t, timers, now, app.SweeperConfig{
		ProvisioningTimeout: time.Minute, AssignTimeout: 2 * time.Minute, DestroyTimeout: 3 * time.Minute,
		BatchSize: 7, Source: "greenroom/expiry-test",
	})
	if res, err := s.RunOnce(context.Background()); err != nil || res.Total() != 0 {
		t.Fatalf("RunOnce = %+v, %v; want nothing fired", res, err)
	}

	want := []struct {
		timer   string
		timeout time.Duration
	}{
		{domain.ReasonProvisioningTimeout, time.Minute},
		{domain.ReasonStagedExpired, 0},
		{domain.ReasonAssignTimeout, 2 * time.Minute},
		{domain.ReasonTimeLimit, 0},
		{domain.ReasonKeepalive, 0},
		{domain.ReasonDestroyRetry, 3 * time.Minute},
	}
	if len(timers.calls) != len(want) {
		t.Fatalf("%d timer calls %+v, want one of each of the %d timers", len(timers.calls), timers.calls, len(want))
	}
	for i, w := range want {
		c := timers.calls[i]
		wantParams := app.TimerParams{
			Now: now, Cutoff: now.Add(-w.timeout), Timeout: w.timeout, Limit: 7, Source: "greenroom/expiry-test",
		}
		if c.timer != w.timer || c.p != wantParams {
			t.Errorf("call %d: %s %+v, want %s %+v", i, c.timer, c.p, w.timer, wantParams)
		}
	}
}

// A pass works off a backlog: it keeps taking batches of a timer while
// they come back full, and stops at the first short one.
func TestSweepKeepsTakingBatchesUntilOneComesBackShort(t *testing.T) {
	timers := newFakeTimers(map[string][]batch{
		domain.ReasonStagedExpired: {{changed: 3, full: true}, {changed: 3, full: true}, {changed: 1}, {changed: 3, full: true}},
		domain.ReasonKeepalive:     {{changed: 2}},
	})
	s := sweeper(t, timers, time.Now(), app.SweeperConfig{BatchSize: 3})

	res, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res != (app.SweepResult{StagedExpired: 7, KeepaliveMissed: 2}) {
		t.Errorf("result %+v, want 7 staged expired (3+3+1) and 2 keepalives missed", res)
	}
	if n := timers.callsOf(domain.ReasonStagedExpired); n != 3 {
		t.Errorf("staged expiry asked %d times, want 3: two full batches, then the short one ends it", n)
	}
	if n := timers.callsOf(domain.ReasonKeepalive); n != 1 {
		t.Errorf("keepalive timer asked %d times, want once: its batch was short", n)
	}
	if got := counter(t, s, "greenroom_expiry_sessions_fired_total", domain.ReasonStagedExpired); got != 7 {
		t.Errorf("fired{reason=staged_expired} = %v, want 7", got)
	}
}

// One timer failing (its transaction rolled back) does not stop the
// others in the same pass; the pass reports the error, naming the timer,
// and still counts what the failing timer changed in the batches it
// committed before.
func TestOneTimerFailingDoesNotStopTheOthers(t *testing.T) {
	broken := errors.New("connection reset")
	timers := newFakeTimers(map[string][]batch{
		domain.ReasonProvisioningTimeout: {{changed: 1}},
		domain.ReasonAssignTimeout:       {{changed: 2, full: true}, {err: broken}},
		domain.ReasonTimeLimit:           {{changed: 1}},
		domain.ReasonDestroyRetry:        {{changed: 1}},
	})
	s := sweeper(t, timers, time.Now(), app.SweeperConfig{BatchSize: 2})

	res, err := s.RunOnce(context.Background())
	if !errors.Is(err, broken) || !strings.Contains(err.Error(), "failing sessions stuck in assigning") {
		t.Fatalf("RunOnce error = %v, want the assign timer's failure, named", err)
	}
	if res != (app.SweepResult{ProvisioningTimedOut: 1, AssignTimedOut: 2, TimeLimitReached: 1, DestroyRetried: 1}) {
		t.Errorf("result %+v, want every timer counted, the failing one with its committed batch", res)
	}
	if n := timers.callsOf(domain.ReasonAssignTimeout); n != 2 {
		t.Errorf("assign timer asked %d times, want 2: no batch after the failure", n)
	}
	for _, timer := range []string{domain.ReasonTimeLimit, domain.ReasonKeepalive, domain.ReasonDestroyRetry} {
		if timers.callsOf(timer) != 1 {
			t.Errorf("timer %s after the failing one was not asked", timer)
		}
	}
	if got := counter(t, s, "greenroom_expiry_pass_errors_total", ""); got != 1 {
		t.Errorf("pass errors = %v, want 1", got)
	}
	if got := counter(t, s, "greenroom_expiry_sessions_fired_total", domain.ReasonAssignTimeout); got != 2 {
		t.Errorf("fired{reason=assign_timeout} = %v, want 2", got)
	}
}

// A pass stops between batches once its context is done, even in the
// middle of a backlog, and says why for every timer it did not finish.
func TestSweepStopsTakingBatchesOnceCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	full := batch{changed: 2, full: true}
	timers := newFakeTimers(map[string][]batch{
		domain.ReasonProvisioningTimeout: {full, full, full, full, full},
	})
	timers.onCall = func(c timerCall) {
		if c.timer == domain.ReasonProvisioningTimeout && timers.callsOf(c.timer) == 2 {
			cancel()
		}
	}
	s := sweeper(t, timers, time.Now(), app.SweeperConfig{BatchSize: 2})

	res, err := s.RunOnce(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("RunOnce error = %v, want context.Canceled", err)
	}
	if res != (app.SweepResult{ProvisioningTimedOut: 4}) {
		t.Errorf("result %+v, want the two batches taken before the cancellation", res)
	}
	if len(timers.calls) != 2 {
		t.Errorf("%d timer calls, want none after the cancellation", len(timers.calls))
	}
}

// The sweeper's loop runs a pass as soon as it starts and signals each
// pass's result to tests.
func TestSweeperLoopSignalsEachPass(t *testing.T) {
	timers := newFakeTimers(map[string][]batch{domain.ReasonStagedExpired: {{changed: 1}}})
	s := sweeper(t, timers, time.Now(), app.SweeperConfig{Interval: time.Hour})
	s.TestSignals.Init()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if res := s.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res != (app.SweepResult{StagedExpired: 1}) {
		t.Errorf("first pass %+v, want one staged expiry", res)
	}
	s.Stop()
	<-s.Stopped()
}
