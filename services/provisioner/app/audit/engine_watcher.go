package audit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/libs/testsignal"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Defaults of EngineWatcherConfig.
const (
	// EngineWatcherAgentsIntervalDefault is how often the list of enabled
	// agents is read again, for engines to start or stop watching. A
	// config.changed of an agent, zone or pool reads it at once, so the
	// period only catches what no event announced.
	EngineWatcherAgentsIntervalDefault = 30 * time.Second
	// EngineWatcherBackoffMinDefault and EngineWatcherBackoffMaxDefault
	// space out the attempts to reach an engine whose event stream broke:
	// 0.5 s, 1 s, 2 s … 30 s, each plus up to 20 % jitter.
	EngineWatcherBackoffMinDefault = 500 * time.Millisecond
	EngineWatcherBackoffMaxDefault = 30 * time.Second
	// EngineWatcherPingTimeoutDefault bounds the ping that checks an
	// engine answers before its event stream is opened: an engine that
	// hangs counts as failed, as one that refuses does.
	EngineWatcherPingTimeoutDefault = 10 * time.Second
	// EngineWatcherHeartbeatDefault is how often a watched engine is
	// pinged while its event stream is open: a hung engine may keep the
	// stream open and answer nothing else. Each answer is the agents'
	// last_heartbeat_at.
	EngineWatcherHeartbeatDefault = 10 * time.Second
)

// backoffJitter is the largest share of a reconnect delay added at random,
// so that replicas that lost an engine together do not knock on it
// together.
const backoffJitter = 0.2

// resumeMargin is how far before a subscription the engine is asked to
// replay its past events. The engine writes its HTTP response before it
// subscribes, and an engine's clock may run behind this host's; judging an
// event twice does nothing, losing one would wait for the next pass.
const resumeMargin = 10 * time.Second

// watchedActions are the container events subscribed to. "die" and
// "destroy" end a session; "oom" only colours the "die" that follows.
var watchedActions = []string{domain.ContainerDied, domain.ContainerDestroyed, domain.ContainerOOM}

// EngineWatcherConfig tunes an EngineWatcher; zero values take the
// defaults.
type EngineWatcherConfig struct {
	// Disabled turns the watcher off: lost containers are then noticed by
	// the ContainerAuditor's periodic pass alone (tests of that pass).
	Disabled bool
	// AgentsInterval is how often the watched agents (enabled, or still hosting live sessions) are read again to
	// watch new or re-enabled agents' engines and stop watching the
	// engines no watched agent uses any more; Trigger reads them at once.
	AgentsInterval time.Duration
	// BackoffMin and BackoffMax bound the wait before an engine whose
	// event stream broke (or never opened) is tried again; the wait
	// doubles on each failure and starts over once a stream stayed up for
	// BackoffMax.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// PingTimeout bounds the ping before a stream is opened, and each
	// heartbeat ping (EngineWatcherPingTimeoutDefault).
	PingTimeout time.Duration
	// Heartbeat is how often an engine whose stream is open is pinged
	// (EngineWatcherHeartbeatDefault). One that does not answer in
	// PingTimeout counts as down: its stream is closed and reopened with
	// backoff, and placement passes its agents over meanwhile.
	Heartbeat time.Duration
}

func (c *EngineWatcherConfig) withDefaults() {
	if c.AgentsInterval <= 0 {
		c.AgentsInterval = EngineWatcherAgentsIntervalDefault
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = EngineWatcherBackoffMinDefault
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = EngineWatcherBackoffMaxDefault
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.PingTimeout <= 0 {
		c.PingTimeout = EngineWatcherPingTimeoutDefault
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = EngineWatcherHeartbeatDefault
	}
}

// EngineConnected is an engine's event stream (re)opened, with the result
// of the audit pass run right after.
type EngineConnected struct {
	Endpoint string
	Audit    AuditResult
}

// EngineEvent is a container event judged.
type EngineEvent struct {
	Endpoint    string
	Action      string
	ContainerID string
	// SessionID is the container's greenroom.session label.
	SessionID string
	// Result says what was done: Failed is 1 when the event ended the
	// session.
	Result AuditResult
}

// EngineBackoff is a wait before an engine is tried again.
type EngineBackoff struct {
	Endpoint string
	Delay    time.Duration
	// At is when the wait began.
	At time.Time
}

// EngineWatcherTestSignals fire as the watcher's streams open, break and
// deliver events.
type EngineWatcherTestSignals struct {
	// Watching receives the endpoints watched after each read of the
	// agents.
	Watching testsignal.Signal[[]string]
	// Connected receives each (re)opened stream once the audit pass that
	// follows the opening is done.
	Connected testsignal.Signal[EngineConnected]
	// Lost receives the endpoint of each stream that broke.
	Lost testsignal.Signal[string]
	// Backoff receives each wait before an engine is tried again.
	Backoff testsignal.Signal[EngineBackoff]
	// EventJudged receives each die or destroy event of a container
	// carrying a session label, once acted on.
	EventJudged testsignal.Signal[EngineEvent]
	// Heartbeat receives the endpoint of each engine that answered a
	// ping, once recorded.
	Heartbeat testsignal.Signal[string]
}

// Init enables the signals; without it they cost nothing.
func (ts *EngineWatcherTestSignals) Init() {
	ts.Watching.Init()
	ts.Connected.Init()
	ts.Lost.Init()
	ts.Backoff.Init()
	ts.EventJudged.Init()
	ts.Heartbeat.Init()
}

// EngineWatcher follows the container events of every watched agent's
// Docker engine, so that a container that dies or is removed behind
// Greenroom's back ends its session at once: a staged session is failed
// and replaced, a running one's user hears session.failed with the
// reason. The ContainerAuditor judges each event as its pass would judge
// the container, so that both agree and replicas act once; its periodic
// pass stays the safety net for what a stream misses.
//
// Each replica watches every engine: every replica sees every event, and
// the first to fail the session wins (the others find it failed).
type EngineWatcher struct {
	// Loop reads the watched agents at once, then every AgentsInterval
	// and on Trigger: call it when an agent was added, enabled, disabled
	// or moved (startstop: Start, Stop).
	*startstop.Loop
	cfg     EngineWatcherConfig
	store   WatchedAgents
	engines Engines
	auditor *ContainerAuditor
	log     *zap.Logger
	metrics *watcherMetrics
	jitter  func() float64
	// health is told of every attempt to reach an engine.
	health EngineHealth

	// watching are the endpoints watched now, each with what stops its
	// stream; streams is their goroutines. Only the loop touches them.
	watching map[string]context.CancelFunc
	streams  sync.WaitGroup

	// TestSignals fire as streams open and events are judged; tests wait
	// on them instead of sleeping. Call TestSignals.Init to enable them.
	TestSignals EngineWatcherTestSignals
}

// NewEngineWatcher returns an EngineWatcher judging events with auditor;
// call Start to run it. Its metrics are registered on reg (none when nil).
func NewEngineWatcher(cfg EngineWatcherConfig, store WatchedAgents, engines Engines,
	auditor *ContainerAuditor, reg prometheus.Registerer, log *zap.Logger) *EngineWatcher {
	cfg.withDefaults()
	w := &EngineWatcher{cfg: cfg, store: store, engines: engines, auditor: auditor,
		log: log.Named("engine_watcher"), metrics: newWatcherMetrics(reg),
		jitter: rand.Float64, watching: map[string]context.CancelFunc{}, health: noEngineHealth{}}
	w.Loop = startstop.NewLoop(startstop.LoopConfig{Interval: cfg.AgentsInterval, Pass: w.pass, Stopping: w.stopWatching})
	return w
}

// ReportEngineHealth tells health the outcome of every attempt to reach
// an engine: an engine whose stream cannot be opened has failed, one that
// answered its ping is up. The watcher keeps trying an engine that does
// not answer, with backoff, for as long as an agent uses it, so what it
// reports stays current. Call it before Start.
func (w *EngineWatcher) ReportEngineHealth(health EngineHealth) *EngineWatcher {
	w.health = health
	return w
}

// Start watches the engines of the watched agents until ctx is done or
// Stop. A disabled watcher does not start.
func (w *EngineWatcher) Start(ctx context.Context) error {
	if w.cfg.Disabled {
		return nil
	}
	return w.Loop.Start(ctx)
}

func (w *EngineWatcher) pass(ctx context.Context) {
	if err := w.syncEndpoints(ctx); err != nil && ctx.Err() == nil {
		w.log.Warn("could not read the agents whose engines to watch", zap.Error(err))
	}
}

// stopWatching stops every stream and waits for them.
func (w *EngineWatcher) stopWatching() {
	for address, stop := range w.watching {
		stop()
		delete(w.watching, address)
	}
	w.streams.Wait()
}

// syncEndpoints starts watching the endpoints of watched agents not
// watched yet and stops watching those no watched agent uses.
func (w *EngineWatcher) syncEndpoints(ctx context.Context) error {
	watching := w.watching
	agents, err := w.store.ListWatchedAgents(ctx)
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, ag := range agents {
		wanted[ag.DockerEndpoint] = true
	}
	for address, stop := range watching {
		if !wanted[address] {
			stop()
			delete(watching, address)
			w.log.Info("stopped watching the engine: no watched agent uses it", zap.String("endpoint", address))
		}
	}
	for address := range wanted {
		if _, ok := watching[address]; ok {
			continue
		}
		wctx, stop := context.WithCancel(ctx)
		watching[address] = stop
		w.streams.Go(func() { w.watch(wctx, address) })
	}
	now := make([]string, 0, len(watching))
	for address := range watching {
		now = append(now, address)
	}
	slices.Sort(now)
	w.TestSignals.Watching.Signal(now)
	return nil
}

// watch keeps an event stream of one engine open until ctx is done,
// reopening it with backoff when it breaks.
func (w *EngineWatcher) watch(ctx context.Context, address string) {
	log := w.log.With(zap.String("endpoint", address))
	since := time.Now().Add(-resumeMargin)
	failures := 0
	down := false // a failure was logged since the last stream opened
	for {
		opened, err := w.stream(ctx, address, &since)
		if ctx.Err() != nil {
			return
		}
		if !opened.IsZero() {
			// Down until a ping answers again: placement passes it over.
			w.health.Failed(address, err)
			w.metrics.lost.Inc()
			w.TestSignals.Lost.Signal(address)
			log.Warn("lost the engine's event stream; reconnecting (the periodic audit covers the meantime)", zap.Error(err))
			down = true
			if time.Since(opened) >= w.cfg.BackoffMax {
				failures = 0
			}
		} else {
			// Not reached: placement passes its agents over until it is.
			w.health.Failed(address, err)
			if !down {
				log.Warn("cannot open the engine's event stream; retrying with backoff (the periodic audit covers the meantime)", zap.Error(err))
				down = true
			} else {
				log.Debug("engine still unreachable", zap.Error(err))
			}
		}
		delay := reconnectDelay(failures, w.cfg.BackoffMin, w.cfg.BackoffMax, w.jitter())
		failures++
		w.TestSignals.Backoff.Signal(EngineBackoff{Endpoint: address, Delay: delay, At: time.Now()})
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// stream opens one event stream of an engine, asking it to replay from
// *since, and judges its events until the stream breaks, while an audit
// pass looks for what happened while no stream was open. It returns when
// the stream opened (zero when it did not) and why it ended; *since moves
// on with the events seen.
func (w *EngineWatcher) stream(ctx context.Context, address string, since *time.Time) (time.Time, error) {
	eng, err := w.engines.For(address)
	if err != nil {
		return time.Time{}, err
	}
	if err := w.heartbeat(ctx, eng, address); err != nil {
		return time.Time{}, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opened := time.Now()
	evs, errs := eng.ContainerEvents(sctx, ContainerEventsOptions{
		Actions: watchedActions, Labels: map[string]string{domain.LabelManaged: "true"}, Since: *since,
	})
	// This subscription replayed everything since *since; the next one
	// need not go back further than shortly before this one opened.
	*since = later(*since, opened.Add(-resumeMargin))

	w.metrics.connected.Inc()
	defer w.metrics.connected.Dec()
	w.log.Info("watching the engine's container events", zap.String("endpoint", address))

	// From here on every death is an event. What died while no stream was
	// open is for one audit pass, run alongside the events: removing
	// orphans may take seconds, and events must not wait for it. Both
	// judge a session the same way, and only once.
	var pass sync.WaitGroup
	defer pass.Wait()
	pass.Go(func() {
		audit, err := w.auditor.AuditEndpoint(ctx, address)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("audit pass after (re)connecting failed", zap.String("endpoint", address), zap.Error(err))
		}
		w.TestSignals.Connected.Signal(EngineConnected{Endpoint: address, Audit: audit})
	})

	oom := map[string]bool{} // containers whose "die" will be an out-of-memory one
	beat := time.NewTicker(w.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case ev := <-evs:
			*since = later(*since, ev.Time)
			w.judge(ctx, address, ev, oom, ev.Time.Before(opened))
		case err := <-errs:
			return opened, err
		case <-beat.C:
			if err := w.heartbeat(ctx, eng, address); err != nil {
				return opened, fmt.Errorf("the engine did not answer its heartbeat ping: %w", err)
			}
		}
	}
}

// heartbeat pings an engine, bounded by PingTimeout; an answer is
// reported up and recorded as its agents' last heartbeat.
func (w *EngineWatcher) heartbeat(ctx context.Context, eng Engine, address string) error {
	pctx, cancel := context.WithTimeout(ctx, w.cfg.PingTimeout)
	err := eng.Ping(pctx)
	cancel()
	if err != nil {
		return err
	}
	w.health.Answered(address)
	if err := w.store.RecordHeartbeat(ctx, address, time.Now()); err != nil && ctx.Err() == nil {
		w.log.Warn("could not record the engine's heartbeat", zap.String("endpoint", address), zap.Error(err))
	}
	w.TestSignals.Heartbeat.Signal(address)
	return nil
}

// judge acts on one container event; replayed says it happened before
// the stream opened (the engine replays the last resumeMargin).
func (w *EngineWatcher) judge(ctx context.Context, address string, ev ContainerEvent, oom map[string]bool, replayed bool) {
	w.metrics.events.WithLabelValues(ev.Action).Inc()
	if ev.Action == domain.ContainerOOM {
		if len(oom) > 1000 { // "die" never came for them; keep the map small
			clear(oom)
		}
		oom[ev.ContainerID] = true
		return
	}
	verdict := domain.JudgeContainerEvent(domain.ContainerEvent{
		Action: ev.Action, ExitCode: ev.ExitCode, HasExitCode: ev.HasExitCode, OutOfMemory: oom[ev.ContainerID],
	})
	delete(oom, ev.ContainerID)
	sessionID := ev.Labels[domain.LabelSession]
	if !verdict.Gone || sessionID == "" {
		return
	}
	if replayed && ev.Action == domain.ContainerDied && w.removedSince(ctx, address, ev.ContainerID) {
		// docker rm -f kills the container (die, code 137) before it
		// removes it: a replayed death of a container that is gone by now
		// was a removal behind Greenroom's back while it was not watching
		// (make down, then make up), not a container that crashed young.
		verdict = domain.JudgeContainerEvent(domain.ContainerEvent{Action: domain.ContainerDestroyed})
	}
	res, err := w.auditor.ContainerGone(ctx, address, sessionID, ev.ContainerID, verdict)
	if err != nil && ctx.Err() == nil {
		w.log.Warn("could not act on a container event; the next audit pass will", zap.String("endpoint", address),
			zap.String("action", ev.Action), zap.String("container_id", domain.ShortID(ev.ContainerID)),
			zap.String("session_id", sessionID), zap.Error(err))
	}
	w.TestSignals.EventJudged.Signal(EngineEvent{Endpoint: address, Action: ev.Action, ContainerID: ev.ContainerID,
		SessionID: sessionID, Result: res})
}

// removedSince reports whether container id no longer exists on the
// engine; an engine that does not answer says nothing.
func (w *EngineWatcher) removedSince(ctx context.Context, address, id string) bool {
	eng, err := w.engines.For(address)
	if err != nil {
		return false
	}
	_, err = eng.Inspect(ctx, id)
	return errors.Is(err, domain.ErrContainerNotFound)
}

// reconnectDelay is the wait before reconnection attempt n (0 is the
// first after a failure): minDelay doubled n times, at most maxDelay, plus
// jitter (in [0, 1)) times backoffJitter of it.
func reconnectDelay(n int, minDelay, maxDelay time.Duration, jitter float64) time.Duration {
	d := minDelay
	for i := 0; i < n && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return d + time.Duration(float64(d)*backoffJitter*jitter)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// watcherMetrics are the engine watcher's Prometheus metrics.
type watcherMetrics struct {
	events    *prometheus.CounterVec
	connected prometheus.Gauge
	lost      prometheus.Counter
}

func newWatcherMetrics(reg prometheus.Registerer) *watcherMetrics {
	m := &watcherMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_provisioner_engine_events_total",
			Help: "Container events of managed containers received from the Docker engines, by action (die, destroy, oom).",
		}, []string{"action"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "greenroom_provisioner_engine_event_streams",
			Help: "Docker engines whose container event stream is open; fewer than the engines in use means some are watched by the periodic audit alone.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "greenroom_provisioner_engine_event_streams_lost_total",
			Help: "Container event streams that broke (engine restarted or unreachable) and were reopened with backoff.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.connected, m.lost)
	}
	return m
}
