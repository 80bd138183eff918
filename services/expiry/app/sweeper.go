// Package app holds the expiry service's use cases. The Sweeper fires the
// session timers: it fails sessions stuck in `provisioning` or `assigning`
// (a request never waits forever: its requester gets
// greenroom.session.failed), expires staged sessions left unassigned past
// their staging config's expiration (rule 2 of DESIGN.md), ends running
// sessions past their session_time_limit or keepalive_expiration, and asks
// again for the destruction of sessions stuck in `destroying`. Its loop,
// its batches and its counts are here; each batch of each timer is one
// call of SessionTimers (session_timers.go), which adapters/postgres
// implements. ExtendSession moves a running session's keepalive deadline
// on a keepalive, over Keepalives (extend_session.go).
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/libs/testsignal"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// Sweeper defaults.
const (
	// SweeperIntervalDefault is the time between passes. Expiry is measured
	// in minutes and hours, so a couple of seconds of lateness is invisible,
	// while a pass over an empty set costs two index scans.
	SweeperIntervalDefault = 2 * time.Second
	// ProvisioningTimeoutDefault is how long a session may stay in
	// `provisioning`. Creating, starting and probing a container takes
	// seconds; two minutes leaves room for a slow image start without
	// letting a lost provisioning request hang its caller indefinitely.
	ProvisioningTimeoutDefault = 2 * time.Minute
	// AssignTimeoutDefault is how long a claimed staged session may stay in
	// `assigning`. The provisioner bounds the assign command itself at one
	// minute (its GREENROOM_ASSIGN_TIMEOUT) and reports failure then; this
	// timer only catches an assignment whose outcome never comes, so it
	// leaves that minute plus the time the event may wait in the queue.
	AssignTimeoutDefault = 2 * time.Minute
	// DestroyTimeoutDefault is how long a session may stay in `destroying`
	// before its destroy is sent again. Removing a container takes a few
	// seconds; after two minutes the first request is lost or failing, and
	// repeating it every two minutes costs the provisioner nothing.
	DestroyTimeoutDefault = 2 * time.Minute
	// SweeperBatchSizeDefault bounds the sessions changed in one transaction,
	// so a backlog is worked off in short transactions.
	SweeperBatchSizeDefault = 100
	// SourceDefault is the CloudEvents source of the events the sweeper emits.
	SourceDefault = "greenroom/expiry"
)

// SweeperConfig configures a Sweeper. Zero values take the defaults above.
type SweeperConfig struct {
	// Interval is the time between two passes of the loop.
	Interval time.Duration

	// ProvisioningTimeout is how long after its creation a session still in
	// `provisioning` is failed (reason provisioning_timeout).
	ProvisioningTimeout time.Duration

	// AssignTimeout is how long after its claim a session still in
	// `assigning` is failed (reason assign_failed) and its container
	// removed (session.expired, reason assign_timeout). Keep it above the
	// provisioner's assign command timeout, or slow but healthy assign
	// commands are cut short.
	AssignTimeout time.Duration

	// DestroyTimeout is how long a session may stay in `destroying` before
	// greenroom.session.destroy (reason destroy_retry) is sent again; it is
	// sent at most once per DestroyTimeout per session.
	DestroyTimeout time.Duration

	// BatchSize is the largest number of sessions one transaction changes.
	// A pass keeps taking batches until a batch comes back short.
	BatchSize int

	// Source is the CloudEvents source of emitted events.
	Source string

	// Now is the sweeper's clock; nil means time.Now. Tests inject a clock
	// so that timers fire without anybody sleeping. Cut-offs computed from
	// it are compared with timestamps PostgreSQL wrote, so the service's
	// clock and the database's must agree to within a small fraction of
	// the timeouts (NTP is plenty).
	Now func() time.Time
}

func (c SweeperConfig) withDefaults() (SweeperConfig, error) {
	switch {
	case c.Interval < 0:
		return c, fmt.Errorf("sweeper interval %s is negative", c.Interval)
	case c.ProvisioningTimeout < 0:
		return c, fmt.Errorf("provisioning timeout %s is negative", c.ProvisioningTimeout)
	case c.AssignTimeout < 0:
		return c, fmt.Errorf("assign timeout %s is negative", c.AssignTimeout)
	case c.DestroyTimeout < 0:
		return c, fmt.Errorf("destroy timeout %s is negative", c.DestroyTimeout)
	case c.BatchSize < 0:
		return c, fmt.Errorf("sweeper batch size %d is negative", c.BatchSize)
	}
	c.Interval = cmp.Or(c.Interval, SweeperIntervalDefault)
	c.ProvisioningTimeout = cmp.Or(c.ProvisioningTimeout, ProvisioningTimeoutDefault)
	c.AssignTimeout = cmp.Or(c.AssignTimeout, AssignTimeoutDefault)
	c.DestroyTimeout = cmp.Or(c.DestroyTimeout, DestroyTimeoutDefault)
	c.BatchSize = cmp.Or(c.BatchSize, SweeperBatchSizeDefault)
	c.Source = cmp.Or(c.Source, SourceDefault)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// SweepResult counts what one pass did.
type SweepResult struct {
	// ProvisioningTimedOut is the number of sessions moved provisioning →
	// failed because they outlived ProvisioningTimeout.
	ProvisioningTimedOut int
	// StagedExpired is the number of staged sessions moved staged →
	// destroying because they outlived their expiration.
	StagedExpired int
	// AssignTimedOut is the number of sessions moved assigning → failed
	// because they outlived AssignTimeout.
	AssignTimedOut int
	// DestroyRetried is the number of sessions stuck in destroying whose
	// destroy was sent again.
	DestroyRetried int
	// TimeLimitReached is the number of running sessions moved to
	// destroying because they reached their session_time_limit.
	TimeLimitReached int
	// KeepaliveMissed is the number of running sessions moved to
	// destroying because no keepalive came within their
	// keepalive_expiration.
	KeepaliveMissed int
}

// Total is the number of sessions the pass fired a timer for.
func (r SweepResult) Total() int {
	return r.ProvisioningTimedOut + r.StagedExpired + r.AssignTimedOut + r.DestroyRetried +
		r.TimeLimitReached + r.KeepaliveMissed
}

// Add sums two results.
func (r SweepResult) Add(o SweepResult) SweepResult {
	return SweepResult{
		ProvisioningTimedOut: r.ProvisioningTimedOut + o.ProvisioningTimedOut,
		StagedExpired:        r.StagedExpired + o.StagedExpired,
		AssignTimedOut:       r.AssignTimedOut + o.AssignTimedOut,
		DestroyRetried:       r.DestroyRetried + o.DestroyRetried,
		TimeLimitReached:     r.TimeLimitReached + o.TimeLimitReached,
		KeepaliveMissed:      r.KeepaliveMissed + o.KeepaliveMissed,
	}
}

// fields are the result's counts as log fields.
func (r SweepResult) fields() []zap.Field {
	return []zap.Field{
		zap.Int("provisioning_timed_out", r.ProvisioningTimedOut), zap.Int("staged_expired", r.StagedExpired),
		zap.Int("assign_timed_out", r.AssignTimedOut), zap.Int("destroy_retried", r.DestroyRetried),
		zap.Int("time_limit_reached", r.TimeLimitReached), zap.Int("keepalive_missed", r.KeepaliveMissed),
	}
}

// SweeperTestSignals let tests wait for the sweeper instead of sleeping.
type SweeperTestSignals struct {
	// PassDone receives the result of every pass the loop runs.
	PassDone testsignal.Signal[SweepResult]
}

// Init enables the signals; without it they cost nothing.
func (ts *SweeperTestSignals) Init() { ts.PassDone.Init() }

// Sweeper fires the session timers. It is a startstop.Loop (Start, Stop)
// running a pass at once and then every Interval; RunOnce is one pass.
type Sweeper struct {
	*startstop.Loop
	cfg    SweeperConfig
	timers SessionTimers
	log    *zap.Logger

	fired   *prometheus.CounterVec
	errors  prometheus.Counter
	elapsed prometheus.Histogram

	// TestSignals fire as the sweeper works; see SweeperTestSignals.
	TestSignals SweeperTestSignals
}

// NewSweeper returns a sweeper firing timers. It fails only on a
// configuration that makes no sense (a negative interval, timeout or batch).
func NewSweeper(cfg SweeperConfig, timers SessionTimers, log *zap.Logger) (*Sweeper, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sweeper{
		cfg:    cfg,
		timers: timers,
		log:    log.Named("sweeper"),
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_expiry_sessions_fired_total",
			Help: "Sessions an expiry timer fired for, by reason (provisioning_timeout, staged_expired, assign_timeout, time_limit, keepalive, destroy_retry).",
		}, []string{"reason"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greenroom_expiry_pass_errors_total",
			Help: "Sweeper passes that failed (the next pass retries).",
		}),
		elapsed: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "greenroom_expiry_pass_duration_seconds",
			Help:    "Duration of one sweeper pass.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
	}
	s.Loop = startstop.NewLoop(startstop.LoopConfig{Interval: cfg.Interval, Pass: s.pass})
	return s, nil
}

// Config returns the configuration in effect, defaults applied.
func (s *Sweeper) Config() SweeperConfig { return s.cfg }

// Collectors are the sweeper's Prometheus metrics, for the service's registry.
func (s *Sweeper) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.fired, s.errors, s.elapsed}
}

// pass runs one pass for the loop. A failed pass is logged and retried on
// the next tick: every change is transactional, so a half-done pass leaves
// nothing half-changed.
func (s *Sweeper) pass(ctx context.Context) {
	res, err := s.RunOnce(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Error("expiry pass failed; retrying next tick", append(res.fields(), zap.Error(err))...)
	case res.Total() > 0:
		s.log.Info("expiry pass", res.fields()...)
	}
	s.TestSignals.PassDone.Signal(res)
}

// RunOnce fires every timer that is due at the sweeper clock's current time:
// it fails sessions stuck in provisioning or assigning, expires staged
// sessions past their expiration, ends running sessions past their time
// limit or keepalive and repeats the destroy of sessions stuck in
// destroying, batch by batch, until none is left that this replica can
// lock. Sessions another replica holds are left to it. One timer failing
// does not stop the others. The result counts what this call changed even
// when it also returns an error.
func (s *Sweeper) RunOnce(ctx context.Context) (SweepResult, error) {
	start := time.Now()
	now := s.cfg.Now()
	var res SweepResult
	var errs []error
	for _, timer := range []struct {
		what    string
		reason  string
		fire    func(context.Context, TimerParams) (int, bool, error)
		timeout time.Duration // zero for a deadline
		count   *int
	}{
		{"failing sessions stuck in provisioning", domain.ReasonProvisioningTimeout, s.timers.FailStuckProvisioning,
			s.cfg.ProvisioningTimeout, &res.ProvisioningTimedOut},
		{"expiring staged sessions", domain.ReasonStagedExpired, s.timers.ExpireStagedSessions,
			0, &res.StagedExpired},
		{"failing sessions stuck in assigning", domain.ReasonAssignTimeout, s.timers.FailStuckAssigning,
			s.cfg.AssignTimeout, &res.AssignTimedOut},
		// Time limit before keepalive: a session past both ends for its
		// time limit.
		{"ending running sessions past their time limit", domain.ReasonTimeLimit, s.timers.EndSessionsPastTimeLimit,
			0, &res.TimeLimitReached},
		{"ending running sessions past their keepalive", domain.ReasonKeepalive, s.timers.EndSessionsPastKeepalive,
			0, &res.KeepaliveMissed},
		{"retrying the destroy of sessions stuck in destroying", domain.ReasonDestroyRetry, s.timers.RetryStuckDestroying,
			s.cfg.DestroyTimeout, &res.DestroyRetried},
	} {
		p := TimerParams{
			Now: now, Cutoff: domain.Cutoff(now, timer.timeout), Timeout: timer.timeout,
			Limit: s.cfg.BatchSize, Source: s.cfg.Source,
		}
		n, err := s.drain(ctx, func(ctx context.Context) (int, bool, error) { return timer.fire(ctx, p) })
		*timer.count = n
		s.fired.WithLabelValues(timer.reason).Add(float64(n))
		if err != nil {
			errs = append(errs, fmt.Errorf("error %s: %w", timer.what, err))
		}
	}
	s.elapsed.Observe(time.Since(start).Seconds())
	if len(errs) > 0 {
		s.errors.Inc()
	}
	return res, errors.Join(errs...)
}

// drain runs batch until it reports that no full batch was taken.
func (s *Sweeper) drain(ctx context.Context, batch func(context.Context) (changed int, full bool, err error)) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, full, err := batch(ctx)
		total += n
		if err != nil || !full {
			return total, err
		}
	}
}
