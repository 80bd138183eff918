// Package staging keeps every staging pool at its desired size: the
// Reconciler compares each staging config with its sessions, creates what
// is missing and destroys what is too much (domain.PlanPool decides,
// adapters/postgres acts under the config's row lock).
package staging

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Defaults of ReconcilerConfig.
const (
	// ReconcilerIntervalDefault is the period of the safety-net pass over
	// every pool. Passes run at once on the events that change a pool, so
	// the tick only catches what no event announced.
	ReconcilerIntervalDefault = 10 * time.Second
	// RefillConcurrencyDefault bounds the staged sessions provisioning at
	// once over every pool and replica, so that refills never take every
	// provisioner slot from users' on-demand requests.
	RefillConcurrencyDefault = 4
	// BackoffMinDefault and BackoffMaxDefault space out the refills of a
	// pool whose creations keep failing: 1 s after the first failure,
	// doubling up to a minute.
	BackoffMinDefault = time.Second
	BackoffMaxDefault = time.Minute
)

// ReconcilerConfig tunes a Reconciler; zero values take the defaults.
type ReconcilerConfig struct {
	// Interval is the period of the pass over every pool.
	Interval time.Duration
	// RefillConcurrency bounds staged sessions provisioning at once, over
	// every pool and replica.
	RefillConcurrency int
	// BackoffMin and BackoffMax bound the wait before a pool whose
	// creations failed is refilled again.
	BackoffMin time.Duration
	BackoffMax time.Duration
}

func (c *ReconcilerConfig) withDefaults() {
	if c.Interval == 0 {
		c.Interval = ReconcilerIntervalDefault
	}
	if c.RefillConcurrency == 0 {
		c.RefillConcurrency = RefillConcurrencyDefault
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = BackoffMinDefault
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = BackoffMaxDefault
	}
}

// ReconcileResult counts what a pass did.
type ReconcileResult struct {
	// Configs is the number of staging configs visited.
	Configs int
	// Created is the number of staged sessions whose provisioning was
	// requested; Destroyed the number of staged sessions destroyed.
	Created   int
	Destroyed int
	// HeldBack counts pools that lacked sessions but created fewer than
	// they lacked (backoff, refill budget, disabled workspace).
	HeldBack int
}

func (r *ReconcileResult) add(o ReconcileResult) {
	r.Configs += o.Configs
	r.Created += o.Created
	r.Destroyed += o.Destroyed
	r.HeldBack += o.HeldBack
}

// Reconciler keeps staging pools at their desired size. Any number of
// replicas may run one: each pool is reconciled under its row lock.
type Reconciler struct {
	cfg     ReconcilerConfig
	store   *postgres.Store
	log     *zap.Logger
	metrics *reconcilerMetrics

	mu      sync.Mutex
	pending map[string]bool      // configs triggered since the last pass
	all     bool                 // a pass over every config was asked for
	retry   map[string]time.Time // when held-back pools may go on
	wake    chan struct{}

	// TestSignals fire as passes finish; tests wait on them instead of
	// sleeping. Call TestSignals.Init to enable them.
	TestSignals ReconcilerTestSignals
}

// NewReconciler returns a Reconciler; call Start to run it.
func NewReconciler(cfg ReconcilerConfig, store *postgres.Store, log *zap.Logger, reg prometheus.Registerer) *Reconciler {
	cfg.withDefaults()
	return &Reconciler{
		cfg: cfg, store: store, log: log.Named("reconciler"), metrics: newReconcilerMetrics(reg),
		pending: map[string]bool{}, retry: map[string]time.Time{}, wake: make(chan struct{}, 1),
	}
}

// Trigger asks for a reconcile of one staging config soon, or of every
// config when id is empty. It never blocks; triggers coalesce.
func (r *Reconciler) Trigger(id string) {
	r.mu.Lock()
	if id == "" {
		r.all = true
	} else {
		r.pending[id] = true
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Start reconciles until ctx is done: every pool at start and on each
// tick, and the pools triggered or held back as soon as they are due.
func (r *Reconciler) Start(ctx context.Context) {
	r.Trigger("")
	ticker := time.NewTicker(r.cfg.Interval)
	defer ticker.Stop()
	retryTimer := time.NewTimer(time.Hour)
	defer retryTimer.Stop()
	for {
		r.setRetryTimer(retryTimer)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.Trigger("")
		case <-retryTimer.C:
			r.dueRetries()
		case <-r.wake:
		}
		all, ids := r.takePending()
		var res ReconcileResult
		var err error
		if all {
			res, err = r.RunOnce(ctx)
		} else {
			for _, id := range ids {
				one, oerr := r.ReconcileConfig(ctx, id)
				res.add(one)
				err = errors.Join(err, oerr)
			}
		}
		if err != nil && ctx.Err() == nil {
			r.log.Warn("reconcile pass failed", zap.Error(err))
		}
		r.TestSignals.PassDone.Signal(res)
	}
}

func (r *Reconciler) takePending() (bool, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := r.all
	ids := make([]string, 0, len(r.pending))
	for id := range r.pending {
		ids = append(ids, id)
	}
	r.all = false
	clear(r.pending)
	return all, ids
}

// setRetryTimer arms t for the earliest held-back pool.
func (r *Reconciler) setRetryTimer(t *time.Timer) {
	r.mu.Lock()
	next := time.Time{}
	for _, at := range r.retry {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	r.mu.Unlock()
	d := time.Hour
	if !next.IsZero() {
		d = max(time.Until(next), time.Millisecond)
	}
	t.Reset(d)
}

// dueRetries moves the held-back pools whose time has come to pending.
func (r *Reconciler) dueRetries() {
	now := time.Now()
	r.mu.Lock()
	for id, at := range r.retry {
		if !at.After(now) {
			r.pending[id] = true
			delete(r.retry, id)
		}
	}
	r.mu.Unlock()
}

// RunOnce reconciles every staging config once. An error of one config is
// reported after the others were reconciled.
func (r *Reconciler) RunOnce(ctx context.Context) (ReconcileResult, error) {
	ids, err := r.store.ListStagingConfigs(ctx)
	if err != nil {
		return ReconcileResult{}, err
	}
	var res ReconcileResult
	var errs []error
	for _, id := range ids {
		one, err := r.ReconcileConfig(ctx, id)
		res.add(one)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// ReconcileConfig reconciles one staging config.
func (r *Reconciler) ReconcileConfig(ctx context.Context, id string) (ReconcileResult, error) {
	backoff := domain.Backoff{Min: r.cfg.BackoffMin, Max: r.cfg.BackoffMax}
	out, err := r.store.ReconcileStagingConfig(ctx, id, r.cfg.RefillConcurrency, func(s domain.PoolState) domain.PoolPlan {
		return domain.PlanPool(s, backoff)
	})
	if err != nil {
		return ReconcileResult{}, fmt.Errorf("reconciling staging config %s: %w", id, err)
	}
	if out.Gone {
		return ReconcileResult{}, nil
	}
	res := ReconcileResult{Configs: 1, Created: len(out.Created), Destroyed: len(out.Destroyed)}
	r.mu.Lock()
	delete(r.retry, id)
	if !out.Plan.RetryAt.IsZero() {
		r.retry[id] = out.Plan.RetryAt
	}
	r.mu.Unlock()
	if out.Plan.HeldBack != "" {
		res.HeldBack = 1
		r.metrics.heldBack.WithLabelValues(out.Plan.HeldBack).Inc()
		if out.Plan.HeldBack != "budget" {
			r.log.Warn("staging pool short and not refilled now", zap.String("staging_config_id", id),
				zap.String("why", out.Plan.HeldBack), zap.Time("retry_at", out.Plan.RetryAt))
		}
	}
	r.metrics.sessions.WithLabelValues("create").Add(float64(res.Created))
	r.metrics.sessions.WithLabelValues("destroy").Add(float64(res.Destroyed))
	if res.Created > 0 || res.Destroyed > 0 {
		r.log.Info("staging pool reconciled", zap.String("staging_config_id", id),
			zap.Int("created", res.Created), zap.Int("destroyed", res.Destroyed), zap.String("status", string(out.Plan.Status)))
	}
	return res, nil
}

type reconcilerMetrics struct {
	sessions *prometheus.CounterVec
	heldBack *prometheus.CounterVec
}

func newReconcilerMetrics(reg prometheus.Registerer) *reconcilerMetrics {
	m := &reconcilerMetrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_pool_sessions_total",
			Help: "Staged sessions the reconciler requested (create) or shrank away (destroy).",
		}, []string{"action"}),
		heldBack: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_pool_held_back_total",
			Help: "Reconciles of a short pool that created fewer sessions than it lacked, by why (backoff, budget, workspace_disabled).",
		}, []string{"why"}),
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.heldBack)
	}
	return m
}
