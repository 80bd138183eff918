// Package staging keeps every staging pool at its desired size: the
// Reconciler compares each staging config with its sessions, destroys what
// is too much or stale and creates what is missing (domain.PlanPool
// decides; Pools, in adapters/postgres, acts under the config's row
// lock), and when a pool cannot be filled it says why on the config's
// status, once per change of cause, and retries with backoff. A pool
// whose configuration changed (a new workspace revision, permissions or
// zone domains) is rolled by a surge: replacements are staged before the
// stale sessions, which keep being handed out meanwhile, go. A pool with a
// schedule aims for the desired sessions of the entry in effect at the
// pass's time (libs/schedule), and is passed over again at the minute a
// run of it starts or ends.
package staging

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Defaults of ReconcilerConfig.
const (
	// ReconcilerIntervalDefault is the period of the safety-net pass over
	// every pool. Passes run at once on the events that change a pool, so
	// the tick only catches what no event announced (an image built on an
	// agent, capacity freed by another pool's sessions).
	ReconcilerIntervalDefault = 10 * time.Second
	// RefillConcurrencyDefault bounds the staged sessions provisioning at
	// once over every pool and replica, so that refills never take every
	// provisioner slot from users' on-demand requests.
	RefillConcurrencyDefault = 4
	// BackoffMinDefault and BackoffMaxDefault space out the retries of a
	// pool short for a transient cause (creations failing, no room): 1 s
	// after the first failure, doubling up to a minute.
	BackoffMinDefault = time.Second
	BackoffMaxDefault = time.Minute
	// PermanentBackoffMinDefault and PermanentBackoffMaxDefault space out
	// the retries of a pool whose creations fail for a cause only a change
	// can fix (a missing image): a minute, doubling up to 15 minutes. A
	// configuration change retries at once.
	PermanentBackoffMinDefault = time.Minute
	PermanentBackoffMaxDefault = 15 * time.Minute
	// RefillQuietDefault and RefillDelayMaxDefault time the refill of a
	// claimed pool (domain.ClaimBurst): it starts once the pool's claims
	// have paused for 250 ms, and at most 2 s after the first of them, so
	// that a burst of hand-offs does not share the agent's CPU with the
	// creation of its replacements.
	RefillQuietDefault    = 250 * time.Millisecond
	RefillDelayMaxDefault = 2 * time.Second
)

// ReconcilerConfig tunes a Reconciler; zero values take the defaults.
type ReconcilerConfig struct {
	// Interval is the period of the pass over every pool.
	Interval time.Duration
	// RefillConcurrency bounds staged sessions provisioning at once, over
	// every pool and replica.
	RefillConcurrency int
	// BackoffMin and BackoffMax bound the wait before a pool short for a
	// transient cause tries again.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// PermanentBackoffMin and PermanentBackoffMax bound the wait before a
	// pool whose creations failed for a permanent cause tries again on
	// its own; it is retried by the periodic pass once that wait is over.
	PermanentBackoffMin time.Duration
	PermanentBackoffMax time.Duration
	// RefillQuiet and RefillDelayMax time the refill of a claimed pool:
	// once its claims paused for RefillQuiet, at most RefillDelayMax after
	// the first. Until then the pool is passed over by triggers and the
	// periodic pass, but not by a change of its configuration.
	RefillQuiet    time.Duration
	RefillDelayMax time.Duration
	// ScheduleClock, when set, is the time staging configs' schedules
	// are read at, instead of the database's clock at each pass; the
	// passes at a schedule's changes are timed on it too. Tests move a
	// pool in and out of a schedule's run with it without waiting for
	// the minute; nil in production.
	ScheduleClock func() time.Time
}

func (c *ReconcilerConfig) withDefaults() {
	c.Interval = cmp.Or(c.Interval, ReconcilerIntervalDefault)
	c.RefillConcurrency = cmp.Or(c.RefillConcurrency, RefillConcurrencyDefault)
	c.BackoffMin = cmp.Or(c.BackoffMin, BackoffMinDefault)
	c.BackoffMax = cmp.Or(c.BackoffMax, BackoffMaxDefault)
	c.PermanentBackoffMin = cmp.Or(c.PermanentBackoffMin, PermanentBackoffMinDefault)
	c.PermanentBackoffMax = cmp.Or(c.PermanentBackoffMax, PermanentBackoffMaxDefault)
	c.RefillQuiet = cmp.Or(c.RefillQuiet, RefillQuietDefault)
	c.RefillDelayMax = cmp.Or(c.RefillDelayMax, RefillDelayMaxDefault)
}

// ReconcileResult counts what a pass did.
type ReconcileResult struct {
	// Configs is the number of staging configs visited.
	Configs int
	// Created is the number of staged sessions whose provisioning was
	// requested; Destroyed the number of sessions destroyed (excess or
	// stale, staged or still provisioning). During a roll a stale staged
	// session is destroyed only once a fresh one replaced it.
	Created   int
	Destroyed int
	// HeldBack counts pools that lacked sessions but created fewer than
	// they lacked (backoff, refill budget, no room, disabled workspace).
	HeldBack int
	// Shortfalls counts pools left in status shortfall.
	Shortfalls int
}

func (r *ReconcileResult) add(o ReconcileResult) {
	r.Configs += o.Configs
	r.Created += o.Created
	r.Destroyed += o.Destroyed
	r.HeldBack += o.HeldBack
	r.Shortfalls += o.Shortfalls
}

// Reconciler keeps staging pools at their desired size. Any number of
// replicas may run one: each pool is reconciled under its row lock. What
// it keeps in memory (which pools to visit, when to retry) only decides
// when it looks again, never what it finds.
type Reconciler struct {
	// Loop runs the passes (startstop: Start, Stop).
	*startstop.Loop
	cfg     ReconcilerConfig
	policy  domain.RetryPolicy
	pools   Pools
	log     *zap.Logger
	metrics *reconcilerMetrics

	mu       sync.Mutex
	pending  map[string]bool              // configs triggered since the last pass
	all      bool                         // a pass over every config was asked for
	forced   map[string]bool              // configs whose configuration changed: retry now
	forceAll bool                         // every config's configuration may have changed
	retry    map[string]time.Time         // when held-back pools may go on
	waits    map[string]int               // passes in a row that found no room, by config
	claimed  map[string]domain.ClaimBurst // claimed pools waiting for their refill
	changes  map[string]time.Time         // when each pool's schedule next changes its size
	nextAll  time.Time                    // when the next pass over every config is due

	// outages are the engines known not to answer, or nil.
	outages EngineOutages

	// TestSignals fire as passes finish; tests wait on them instead of
	// sleeping. Call TestSignals.Init to enable them.
	TestSignals ReconcilerTestSignals
}

// NewReconciler returns a Reconciler; call Start to run it.
func NewReconciler(cfg ReconcilerConfig, pools Pools, log *zap.Logger, reg prometheus.Registerer) *Reconciler {
	cfg.withDefaults()
	r := &Reconciler{
		cfg: cfg,
		policy: domain.RetryPolicy{
			Transient: domain.Backoff{Min: cfg.BackoffMin, Max: cfg.BackoffMax},
			Permanent: domain.Backoff{Min: cfg.PermanentBackoffMin, Max: cfg.PermanentBackoffMax},
		},
		pools: pools, log: log.Named("reconciler"), metrics: newReconcilerMetrics(reg),
		pending: map[string]bool{}, forced: map[string]bool{}, retry: map[string]time.Time{}, waits: map[string]int{},
		claimed: map[string]domain.ClaimBurst{}, changes: map[string]time.Time{},
	}
	// No ticker: a pass over every config is one of the times NextRun
	// gives, so that it is never skipped by a triggered pass just before.
	r.Loop = startstop.NewLoop(startstop.LoopConfig{Pass: r.pass, NextRun: r.nextRun})
	return r
}

// UseEngineOutages has the passes count no room on the agents whose
// engine outages knows to be down, as placement puts nothing there. Call
// it before Start.
func (r *Reconciler) UseEngineOutages(outages EngineOutages) *Reconciler {
	r.outages = outages
	return r
}

// Trigger asks for a reconcile of one staging config soon, or of every
// config when id is empty: something about the pool changed (a session
// staged, claimed, failed or destroyed). It never blocks; triggers
// coalesce. A pool backing off after failed creations stays backing off.
func (r *Reconciler) Trigger(id string) { r.trigger(id, false) }

// ConfigChanged is Trigger for a configuration change (config.changed):
// the staging config id, or "" when a zone, agent, pool or workspace
// changed. The change may have removed what kept a pool short (capacity
// added, an agent re-enabled, a workspace re-enabled or its image fixed),
// so such a pool tries again at once, whatever its backoff.
func (r *Reconciler) ConfigChanged(id string) { r.trigger(id, true) }

// Claimed is Trigger for a session claimed from pool id: its replacement
// is made once the pool's claims pause (domain.ClaimBurst), not at once.
func (r *Reconciler) Claimed(id string) {
	if id == "" {
		return
	}
	r.mu.Lock()
	r.claimed[id] = r.claimed[id].Add(time.Now())
	r.mu.Unlock()
	r.Loop.Trigger()
}

func (r *Reconciler) trigger(id string, force bool) {
	r.mu.Lock()
	if id == "" {
		r.all = true
		r.forceAll = r.forceAll || force
	} else {
		r.pending[id] = true
		r.forced[id] = r.forced[id] || force
	}
	r.mu.Unlock()
	r.Loop.Trigger()
}

// pass reconciles every pool when that is due (at start, then every
// Interval), and otherwise the pools triggered or held back whose time
// has come.
func (r *Reconciler) pass(ctx context.Context) {
	if now := time.Now(); !now.Before(r.nextAll) {
		r.mu.Lock()
		r.nextAll = now.Add(r.cfg.Interval)
		r.all = true
		r.mu.Unlock()
	}
	r.dueRetries()
	p := r.takePending()
	var res ReconcileResult
	var err error
	if p.all {
		res, err = r.runAll(ctx, p)
	} else {
		for _, id := range p.ids {
			one, oerr := r.reconcile(ctx, id, p.forced[id])
			res.add(one)
			err = errors.Join(err, oerr)
		}
	}
	if err != nil && ctx.Err() == nil {
		r.log.Warn("reconcile pass failed", zap.Error(err))
	}
	r.TestSignals.PassDone.Signal(res)
}

// pendingWork is what the triggers since the last pass asked for.
type pendingWork struct {
	all      bool
	ids      []string
	forceAll bool
	forced   map[string]bool
	// waiting are claimed pools whose refill is not due yet: passed over
	// unless forced.
	waiting map[string]bool
}

// skips says whether the pass passes over pool id.
func (p pendingWork) skips(id string) bool {
	return p.waiting[id] && !p.forceAll && !p.forced[id]
}

func (r *Reconciler) takePending() pendingWork {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := pendingWork{all: r.all, forceAll: r.forceAll, forced: r.forced, ids: make([]string, 0, len(r.pending)),
		waiting: make(map[string]bool, len(r.claimed))}
	for id := range r.claimed {
		p.waiting[id] = true
	}
	for id := range r.pending {
		if p.skips(id) {
			continue // it is visited when its refill is due
		}
		p.ids = append(p.ids, id)
	}
	r.all, r.forceAll, r.forced = false, false, map[string]bool{}
	clear(r.pending)
	return p
}

// nextRun is when the next pass is due: the pass over every pool, or the
// earliest held-back pool's retry, claimed pool's refill or change of a
// pool's schedule.
func (r *Reconciler) nextRun() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.nextAll
	for _, at := range r.retry {
		if at.Before(next) {
			next = at
		}
	}
	for _, at := range r.changes {
		if at.Before(next) {
			next = at
		}
	}
	for _, b := range r.claimed {
		if at := b.RefillAt(r.cfg.RefillQuiet, r.cfg.RefillDelayMax); at.Before(next) {
			next = at
		}
	}
	return next
}

// dueRetries moves the held-back pools, the claimed pools and the pools
// whose schedule changes whose time has come to pending.
func (r *Reconciler) dueRetries() {
	now := time.Now()
	r.mu.Lock()
	for id, at := range r.retry {
		if !at.After(now) {
			r.pending[id] = true
			delete(r.retry, id)
		}
	}
	for id, at := range r.changes {
		if !at.After(now) {
			r.pending[id] = true
			delete(r.changes, id)
		}
	}
	for id, b := range r.claimed {
		if !b.RefillAt(r.cfg.RefillQuiet, r.cfg.RefillDelayMax).After(now) {
			r.pending[id] = true
			delete(r.claimed, id)
		}
	}
	r.mu.Unlock()
}

// RunOnce reconciles every staging config once, as the periodic pass
// does. An error of one config is reported after the others were
// reconciled.
func (r *Reconciler) RunOnce(ctx context.Context) (ReconcileResult, error) {
	return r.runAll(ctx, pendingWork{})
}

func (r *Reconciler) runAll(ctx context.Context, p pendingWork) (ReconcileResult, error) {
	ids, err := r.pools.ListStagingConfigs(ctx)
	if err != nil {
		return ReconcileResult{}, err
	}
	var res ReconcileResult
	var errs []error
	for _, id := range ids {
		if p.skips(id) {
			continue
		}
		one, err := r.reconcile(ctx, id, p.forceAll || p.forced[id])
		res.add(one)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// ReconcileConfig reconciles one staging config, as a trigger does.
func (r *Reconciler) ReconcileConfig(ctx context.Context, id string) (ReconcileResult, error) {
	return r.reconcile(ctx, id, false)
}

func (r *Reconciler) reconcile(ctx context.Context, id string, forced bool) (ReconcileResult, error) {
	r.mu.Lock()
	waits := r.waits[id]
	r.mu.Unlock()
	started := time.Now()
	pass := PoolPass{
		RefillLimit: r.cfg.RefillConcurrency, CapacityWaits: waits, Forced: forced,
		Decide:  func(s domain.PoolState) domain.PoolPlan { return domain.PlanPool(s, r.policy) },
		Outages: r.outages,
	}
	if r.cfg.ScheduleClock != nil {
		pass.ScheduleAt = r.cfg.ScheduleClock()
	}
	out, err := r.pools.ReconcileStagingConfig(ctx, id, pass)
	if err != nil {
		return ReconcileResult{}, fmt.Errorf("reconciling staging config %s: %w", id, err)
	}
	plan := out.Plan
	r.mu.Lock()
	delete(r.retry, id)
	if r.claimed[id].Last.Before(started) {
		// Reconciled now, with whatever it lacked. A claim that came
		// during the pass may not be in what it read: it waits its turn.
		delete(r.claimed, id)
	}
	if !plan.RetryAt.IsZero() {
		// RetryAt is on the database's clock; the timer runs on ours.
		r.retry[id] = time.Now().Add(plan.RetryAt.Sub(out.DBNow))
	}
	if out.ScheduleChange > 0 {
		// Counted from the time the pass read the schedule at, so at
		// worst a pass's length late, never early: a pass a moment
		// early would find nothing changed yet.
		r.changes[id] = time.Now().Add(out.ScheduleChange)
	} else {
		delete(r.changes, id)
	}
	if plan.HeldBack == domain.HeldForCapacity || plan.HeldBack == domain.HeldForDestroys || plan.HeldBack == domain.HeldForRoll {
		r.waits[id]++
	} else {
		delete(r.waits, id)
	}
	if out.Gone {
		delete(r.retry, id)
		delete(r.waits, id)
		delete(r.changes, id)
	}
	r.mu.Unlock()
	if out.Gone {
		return ReconcileResult{}, nil
	}

	res := ReconcileResult{Configs: 1, Created: len(out.Created), Destroyed: len(out.Destroyed)}
	log := r.log.With(zap.String("staging_config_id", id))
	if plan.HeldBack != "" {
		res.HeldBack = 1
		r.metrics.heldBack.WithLabelValues(string(plan.HeldBack)).Inc()
	}
	if plan.Status == domain.PoolShortfall {
		res.Shortfalls = 1
	}
	if sf := out.Announced; sf != nil {
		// Written once per change of cause under the config's row lock, so
		// this warning is logged once over every retry and replica.
		r.metrics.shortfalls.WithLabelValues(string(sf.Kind)).Inc()
		fields := []zap.Field{zap.String("reason", sf.Message()), zap.Bool("permanent", sf.Permanent)}
		if !plan.RetryAt.IsZero() {
			fields = append(fields, zap.Time("retry_at", plan.RetryAt))
		}
		log.Warn("staging pool cannot reach its desired size", fields...)
	}
	if out.Recovered {
		log.Info("staging pool no longer short", zap.String("status", string(plan.Status)))
	}
	r.metrics.sessions.WithLabelValues("create").Add(float64(res.Created))
	r.metrics.sessions.WithLabelValues("destroy").Add(float64(res.Destroyed))
	if res.Created > 0 || res.Destroyed > 0 {
		log.Info("staging pool reconciled", zap.Int("created", res.Created), zap.Int("destroyed", res.Destroyed),
			zap.String("status", string(plan.Status)), zap.String("held_back", string(plan.HeldBack)))
	}
	return res, nil
}

type reconcilerMetrics struct {
	sessions   *prometheus.CounterVec
	heldBack   *prometheus.CounterVec
	shortfalls *prometheus.CounterVec
}

func newReconcilerMetrics(reg prometheus.Registerer) *reconcilerMetrics {
	m := &reconcilerMetrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_pool_sessions_total",
			Help: "Staged sessions the reconciler requested (create) or destroyed as excess or stale (destroy).",
		}, []string{"action"}),
		heldBack: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_pool_held_back_total",
			Help: "Reconciles of a short pool that created fewer sessions than it lacked, by why (backoff, budget, no_capacity, destroying, rolling, workspace_disabled).",
		}, []string{"why"}),
		shortfalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_pool_shortfalls_total",
			Help: "Changes of a staging pool's cause of shortfall announced (staging.shortfall), by kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.heldBack, m.shortfalls)
	}
	return m
}
