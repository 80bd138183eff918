// Package service is Greenroom's expiry service: the timers that end
// sessions nobody else is going to end. Its Sweeper fails sessions stuck in
// `provisioning` (rule: a request never waits forever) and expires staged
// sessions left unassigned past their staging config's expiration (rule 2 of
// DESIGN.md). Each decision is a status change made through libs/sessions
// and announced through the outbox in the same transaction; the provisioner
// acts on the greenroom.session.expired events (removes the container and
// refills the staging pool).
//
// Every replica may sweep at the same time: due sessions are selected with
// FOR UPDATE SKIP LOCKED, so each one is fired by exactly one replica, and a
// session being claimed by the assigner at that moment is skipped rather
// than expired under it.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
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
	// SweeperBatchSizeDefault bounds the sessions changed in one transaction,
	// so a backlog is worked off in short transactions.
	SweeperBatchSizeDefault = 100
	// SourceDefault is the CloudEvents source of the events the sweeper emits.
	SourceDefault = "greenroom/expiry"
)

// SweeperConfig configures a Sweeper. Zero values take the defaults above.
type SweeperConfig struct {
	// Interval is the time between two passes of Start.
	Interval time.Duration

	// ProvisioningTimeout is how long after its creation a session still in
	// `provisioning` is failed (reason provisioning_timeout).
	ProvisioningTimeout time.Duration

	// BatchSize is the largest number of sessions one transaction changes.
	// A pass keeps taking batches until a batch comes back short.
	BatchSize int

	// Source is the CloudEvents source of emitted events.
	Source string

	// Now is the sweeper's clock; nil means time.Now. Tests inject a clock
	// so that timers fire without anybody sleeping. Cut-offs computed from
	// it are compared with timestamps PostgreSQL wrote, so the service's
	// clock and the database's must agree to within a small fraction of
	// ProvisioningTimeout (NTP is plenty).
	Now func() time.Time
}

func (c SweeperConfig) withDefaults() (SweeperConfig, error) {
	switch {
	case c.Interval < 0:
		return c, fmt.Errorf("sweeper interval %s is negative", c.Interval)
	case c.ProvisioningTimeout < 0:
		return c, fmt.Errorf("provisioning timeout %s is negative", c.ProvisioningTimeout)
	case c.BatchSize < 0:
		return c, fmt.Errorf("sweeper batch size %d is negative", c.BatchSize)
	}
	if c.Interval == 0 {
		c.Interval = SweeperIntervalDefault
	}
	if c.ProvisioningTimeout == 0 {
		c.ProvisioningTimeout = ProvisioningTimeoutDefault
	}
	if c.BatchSize == 0 {
		c.BatchSize = SweeperBatchSizeDefault
	}
	if c.Source == "" {
		c.Source = SourceDefault
	}
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
}

// Total is the number of sessions the pass changed.
func (r SweepResult) Total() int { return r.ProvisioningTimedOut + r.StagedExpired }

// SweeperTestSignals lets tests wait for the sweeper instead of sleeping.
// Each channel is nil (no signal) unless a test sets it; sends never block,
// so give the channel enough buffer for the passes the test waits for.
type SweeperTestSignals struct {
	// PassCompleted receives the result of every pass Start runs.
	PassCompleted chan SweepResult
}

func (s SweeperTestSignals) passCompleted(r SweepResult) {
	if s.PassCompleted == nil {
		return
	}
	select {
	case s.PassCompleted <- r:
	default:
	}
}

// Sweeper fires the session timers. Start runs it; RunOnce is one pass.
type Sweeper struct {
	cfg SweeperConfig
	db  *sqlx.DB
	log *zap.Logger

	fired   *prometheus.CounterVec
	errors  prometheus.Counter
	elapsed prometheus.Histogram

	// TestSignals fire as the sweeper works; see SweeperTestSignals.
	TestSignals SweeperTestSignals
}

// NewSweeper returns a sweeper over the sessions in conn. It fails only on
// a configuration that makes no sense (a negative interval, timeout or batch).
func NewSweeper(cfg SweeperConfig, conn *sqlx.DB, log *zap.Logger) (*Sweeper, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Sweeper{
		cfg: cfg,
		db:  conn,
		log: log.Named("sweeper"),
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_expiry_sessions_fired_total",
			Help: "Sessions ended by an expiry timer, by reason (provisioning_timeout, staged_expired).",
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
	}, nil
}

// Config returns the configuration in effect, defaults applied.
func (s *Sweeper) Config() SweeperConfig { return s.cfg }

// Collectors are the sweeper's Prometheus metrics, for the service's registry.
func (s *Sweeper) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.fired, s.errors, s.elapsed}
}

// Start runs a pass at once and then every Interval until ctx is done. A
// failed pass is logged and retried on the next tick: every change is
// transactional, so a half-done pass leaves nothing half-changed.
func (s *Sweeper) Start(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.Interval)
	defer ticker.Stop()
	for {
		res, err := s.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("expiry pass failed; retrying next tick", zap.Error(err),
				zap.Int("provisioning_timed_out", res.ProvisioningTimedOut), zap.Int("staged_expired", res.StagedExpired))
		case res.Total() > 0:
			s.log.Info("expiry pass",
				zap.Int("provisioning_timed_out", res.ProvisioningTimedOut), zap.Int("staged_expired", res.StagedExpired))
		}
		s.TestSignals.passCompleted(res)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// RunOnce fires every timer that is due at the sweeper clock's current time:
// it fails sessions stuck in provisioning and expires staged sessions past
// their expiration, batch by batch, until none is left that this replica can
// lock. Sessions another replica holds are left to it. The result counts
// what this call changed even when it also returns an error.
func (s *Sweeper) RunOnce(ctx context.Context) (SweepResult, error) {
	start := time.Now()
	now := s.cfg.Now()
	var res SweepResult
	var errs []error

	n, err := s.drain(ctx, func(ctx context.Context) (int, bool, error) { return s.failStuckProvisioning(ctx, now) })
	res.ProvisioningTimedOut = n
	if err != nil {
		errs = append(errs, fmt.Errorf("error failing sessions stuck in provisioning: %w", err))
	}
	n, err = s.drain(ctx, func(ctx context.Context) (int, bool, error) { return s.expireStagedSessions(ctx, now) })
	res.StagedExpired = n
	if err != nil {
		errs = append(errs, fmt.Errorf("error expiring staged sessions: %w", err))
	}

	s.fired.WithLabelValues(reasonProvisioningTimeout).Add(float64(res.ProvisioningTimedOut))
	s.fired.WithLabelValues(reasonStagedExpired).Add(float64(res.StagedExpired))
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
