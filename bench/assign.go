package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

const assignScenarioName = "assignment"

var allowAll = events.Permissions{AllowAudio: true, AllowClipboardDown: true, AllowClipboardUp: true,
	AllowDownloads: true, AllowMicrophone: true, AllowUploads: true, AllowGamepad: true}

// rateStep is one fixed offered rate.
type rateStep struct {
	rate float64 // requests per second
	dur  time.Duration
}

// assignScenario: config + assigner only (no provisioner, no Docker), a
// pool of staged rows far larger than the run consumes, requests published
// on the bus at fixed rates and at saturation; latency publish →
// session.assigned. Raw limit: ClaimStaged + outbox insert per transaction
// at the same concurrency against the same database.
// scaledAssigners is the replica count of the assign scenario's second
// saturation run.
const scaledAssigners = 3

func assignScenario(quick bool) error {
	steps := []rateStep{{50, 10 * time.Second}, {100, 10 * time.Second}, {200, 10 * time.Second}, {500, 10 * time.Second}}
	satN, httpSatN, rawN, rawMax := 6000, 3000, 20000, 10*time.Second
	if quick {
		steps = []rateStep{{100, 3 * time.Second}, {500, 3 * time.Second}}
		satN, httpSatN, rawN, rawMax = 2500, 1000, 6000, 4*time.Second
	}
	const warmN = 100
	pool := warmN + 2*satN + httpSatN + rawN + 200 + warmN
	for _, s := range steps {
		pool += 2 * int(s.rate*s.dur.Seconds()) // bus and HTTP
	}

	e, err := startEnv(envAssign)
	if err != nil {
		return err
	}
	defer e.close()
	zoneID, agentID, err := e.fixture()
	if err != nil {
		return err
	}
	userID, err := e.userID(e.User)
	if err != nil {
		return fmt.Errorf("finding the user's id: %w", err)
	}
	// The workspace is never started here: no provisioner runs.
	wsID, err := e.create("/api/v1/workspaces", e.workspace("demo"))
	if err != nil {
		return err
	}
	scID, err := e.create("/api/v1/staging-configs", e.stagingConfig("demo", 1))
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := seedStaged(e, pool, wsID, zoneID, agentID, scID); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: seeded %d staged sessions in %s\n", pool, time.Since(t0).Round(time.Millisecond))

	nc, err := nats.Connect(e.NatsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	w, err := newWatcher(nc, events.TypeSessionAssigned)
	if err != nil {
		return err
	}
	defer w.close()
	pubNC, err := nats.Connect(e.NatsURL)
	if err != nil {
		return err
	}
	defer pubNC.Close()
	cl, err := client.New(pubNC, client.WithSource("greenroom/bench"))
	if err != nil {
		return err
	}
	defer cl.Close()

	// Warm-up: connections, prepared plans, consumer.
	if _, err := w.offered(warmN, 100, e.requestPublisher(cl)); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	// The same requests two ways: published on the bus as internal
	// services do, and through POST /api/v1/sessions?wait=0 (202), which
	// the config service publishes; each at the fixed rates, then at
	// saturation.
	paths := []struct {
		name string
		send func(id string) error
		satN int
	}{
		{"bus", e.requestPublisher(cl), satN},
		{"HTTP POST (wait=0)", e.requestPoster(), httpSatN},
	}
	var busSat stats
	for _, path := range paths {
		for _, s := range steps {
			if interrupted() {
				return nil
			}
			n := int(s.rate * s.dur.Seconds())
			st, err := w.offered(n, s.rate, path.send)
			if err != nil {
				return err
			}
			var p50t, p99t time.Duration
			switch {
			case path.name != "bus":
			case s.rate == 100:
				p50t, p99t = 3*time.Millisecond, 10*time.Millisecond
			case s.rate == 500:
				p99t = 25 * time.Millisecond
			}
			name := fmt.Sprintf("%s @ %g/s", path.name, s.rate)
			addLatencies(name, st, p50t, p99t)
			add(assignScenarioName, name+" achieved rate", st.rate, "/s", 0, 0, fmt.Sprintf("= %g/s offered", s.rate), ptr(st.rate >= 0.95*s.rate))
			if st.lost > 0 {
				note("%s: %d of %d requests got no session.assigned within the wait", name, st.lost, n)
			}
		}
		if interrupted() {
			return nil
		}
		sat, err := w.offered(path.satN, 0, path.send)
		if err != nil {
			return err
		}
		if path.name == "bus" {
			busSat = sat
		} else {
			add(assignScenarioName, path.name+" saturation sustained rate", sat.rate, "/s", 0, 0, "", nil)
		}
		add(assignScenarioName, path.name+" saturation p50", ms(sat.p(0.5)), "ms", 0, 0, "", nil)
		add(assignScenarioName, path.name+" saturation p99", ms(sat.p(0.99)), "ms", 0, 0, "", nil)
		if sat.lost > 0 {
			note("%s saturation: %d of %d requests got no session.assigned within the wait", path.name, sat.lost, path.satN)
		}
	}

	// The bus at saturation again with 3 assigner replicas (each with its
	// own connections and outbox relay), side by side with the run of 1
	// above: what scaling the assigner out buys on this machine.
	if interrupted() {
		return nil
	}
	for range scaledAssigners - 1 {
		if err := e.addAssigner(context.Background()); err != nil {
			return fmt.Errorf("starting another assigner: %w", err)
		}
	}
	if _, err := w.offered(warmN, 100, e.requestPublisher(cl)); err != nil {
		return fmt.Errorf("warm-up of %d assigners: %w", scaledAssigners, err)
	}
	scaled, err := w.offered(satN, 0, e.requestPublisher(cl))
	if err != nil {
		return err
	}
	name := fmt.Sprintf("bus saturation, %d assigners", scaledAssigners)
	add(assignScenarioName, name+" sustained rate", scaled.rate, "/s", busSat.rate, scaled.rate/busSat.rate, "ratio to 1 assigner, same run", nil)
	add(assignScenarioName, name+" p50", ms(scaled.p(0.5)), "ms", 0, 0, "", nil)
	add(assignScenarioName, name+" p99", ms(scaled.p(0.99)), "ms", 0, 0, "", nil)
	if scaled.lost > 0 {
		note("%s: %d of %d requests got no session.assigned within the wait", name, scaled.lost, satN)
	}

	// Raw limit, after Greenroom's runs, on the rows left in the same pool.
	raw, err := rawClaims(e, scID, userID, rawN, rawMax)
	if err != nil {
		return err
	}
	add(assignScenarioName, "raw claim+outbox tx (16 workers)", raw, "/s", 0, 0, "", nil)
	ratio := busSat.rate / raw
	add(assignScenarioName, "bus saturation sustained rate", busSat.rate, "/s", raw, ratio, "≥ 750/s and ≥ 50 % of raw", ptr(busSat.rate >= 750 && ratio >= 0.5))
	return nil
}

// addLatencies reports a run's latency percentiles and their split into
// the service's part and the delivery; a limit > 0 is that figure's target.
func addLatencies(name string, st stats, p50Limit, p99Limit time.Duration) {
	lat := func(metric string, v time.Duration, limit time.Duration) {
		target, met := "", (*bool)(nil)
		if limit > 0 {
			target, met = "≤ "+fmtMs(limit), ptr(v <= limit)
		}
		add(assignScenarioName, name+" "+metric, ms(v), "ms", 0, 0, target, met)
	}
	lat("p50", st.p(0.50), p50Limit)
	lat("p90", st.p(0.90), 0)
	lat("p99", st.p(0.99), p99Limit)
	lat("max", st.p(1), 0)
	lat("p50 of which request → assigner wrote the event", quantile(st.service, 0.5), 0)
	lat("p99 of which request → assigner wrote the event", quantile(st.service, 0.99), 0)
	lat("p50 of which event written → received", quantile(st.delivery, 0.5), 0)
	lat("p99 of which event written → received", quantile(st.delivery, 0.99), 0)
}

// requestPoster returns a sender that asks for the session through
// POST /api/v1/sessions?wait=0, as a user-facing service would.
func (e *env) requestPoster() func(id string) error {
	return func(id string) error {
		status, out, err := e.call(http.MethodPost, "/api/v1/sessions?wait=0",
			map[string]any{"user": e.User, "workspace": e.name("demo"), "zone": e.Zone, "request_id": id})
		if err != nil {
			return err
		}
		if status != http.StatusAccepted && status != http.StatusCreated && status != http.StatusOK {
			return fmt.Errorf("POST /api/v1/sessions: %d %v", status, out)
		}
		return nil
	}
}

// userID looks a user's id up in the database.
func (e *env) userID(name string) (string, error) {
	var id string
	err := e.DB.Get(&id, `SELECT id FROM users WHERE username = $1`, name)
	return id, err
}

// insertStagedRow stores one staged session of the staging config scID
// without a container, as the provisioner would once it had made one.
func (e *env) insertStagedRow(ctx context.Context, wsID, zoneID, agentID, scID string) error {
	s, err := sessions.Insert(ctx, e.DB, sessions.New{ID: uuid.NewString(), WorkspaceID: wsID, ZoneID: zoneID,
		AgentID: agentID, StagingConfigID: scID, Origin: sessions.OriginStaged, Permissions: allowAll,
		Cores: 0.1, MemoryMB: 64})
	if err != nil {
		return err
	}
	_, err = sessions.Transition(ctx, e.DB, s.ID, sessions.Provisioning, sessions.Staged, sessions.Change{
		ContainerID: sessions.Ptr("bench-" + s.ID[:8]), URL: sessions.Ptr("http://127.0.0.1:9/"),
		ExpiresAt: sessions.Ptr(time.Now().Add(24 * time.Hour))})
	return err
}

// seedStaged inserts n staged sessions without containers, 16 at a time.
func seedStaged(e *env, n int, wsID, zoneID, agentID, scID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var next atomic.Int64
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for int(next.Add(1)) <= n && ctx.Err() == nil && !interrupted() {
				if err := e.insertStagedRow(ctx, wsID, zoneID, agentID, scID); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// rawClaims runs ClaimStaged + one outbox insert per transaction with
// `concurrency` workers until n claims or max time; claims per second.
func rawClaims(e *env, scID, userID string, n int, max time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), max+30*time.Second)
	defer cancel()
	deadline := time.Now().Add(max)
	var next, done atomic.Int64
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for int(next.Add(1)) <= n && time.Now().Before(deadline) && !interrupted() {
				err := func() error {
					tx, err := e.DB.BeginTxx(ctx, nil)
					if err != nil {
						return err
					}
					defer func() { _ = tx.Rollback() }()
					rid := uuid.NewString()
					s, err := sessions.ClaimStaged(ctx, tx, scID, userID, rid, allowAll)
					if err != nil {
						return err
					}
					ev, err := events.New("greenroom/bench", events.TypeSessionAssigned, events.SessionAssigned{RequestID: rid,
						SessionID: s.ID, User: e.User, UserID: userID, Workspace: e.name("demo"), Zone: e.Zone, StagingConfigID: scID})
					if err != nil {
						return err
					}
					// A subject nobody consumes: the relay publishes it, no service acts on it.
					if err := outbox.Enqueue(ctx, tx, "greenroom.bench.raw", ev, rid); err != nil {
						return err
					}
					return tx.Commit()
				}()
				if err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("raw claim loop: %w", err)
	}
	return float64(done.Load()) / took.Seconds(), nil
}

// watcher matches session events to the requests that caused them.
type watcher struct {
	sub     *nats.Subscription
	mu      sync.Mutex
	pending map[string]time.Time // request id → publish start
	got     map[string]time.Time // request id → event received
	made    map[string]time.Time // request id → the event's own time (when the service wrote it)
	arrived chan struct{}
}

func newWatcher(nc *nats.Conn, subject string) (*watcher, error) {
	w := &watcher{pending: map[string]time.Time{}, got: map[string]time.Time{}, made: map[string]time.Time{},
		arrived: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		now := time.Now()
		id := m.Header.Get(events.HeaderRequestID)
		// The CloudEvents time is set when the service writes the event in
		// its transaction: it splits the latency into the service's part
		// and the delivery (commit, its publish, stream, subscriber).
		var ev struct {
			Time time.Time `json:"time"`
		}
		_ = json.Unmarshal(m.Data, &ev)
		w.mu.Lock()
		if _, ok := w.pending[id]; ok {
			if _, seen := w.got[id]; !seen {
				w.got[id] = now
				w.made[id] = ev.Time
			}
		}
		w.mu.Unlock()
		select {
		case w.arrived <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1)
	w.sub = sub
	return w, nc.Flush()
}

func (w *watcher) close() { _ = w.sub.Unsubscribe() }

// stats of one run of requests.
type stats struct {
	n    int
	lat  []time.Duration // sorted
	rate float64         // completed per second, first send → last event
	lost int
	// The two hops of lat, each sorted: request published → event written
	// by the service (bus in, decision, claim), and event written →
	// received (commit, the publish, stream, subscriber).
	service, delivery []time.Duration
}

func (s stats) p(q float64) time.Duration { return quantile(s.lat, q) }

// quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return sorted[i]
}

// offered sends n requests through send: at rate per second (open loop:
// each send starts on schedule in its own goroutine, at most 256 in
// flight), or with rate 0 as fast as 64 senders go. It then waits (at most
// 30 s) for their events.
func (w *watcher) offered(n int, rate float64, send func(id string) error) (stats, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	var firstErr atomic.Value
	sendOne := func(id string) {
		w.mu.Lock()
		w.pending[id] = time.Now()
		w.mu.Unlock()
		if err := send(id); err != nil {
			firstErr.CompareAndSwap(nil, err)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	if rate > 0 {
		sem := make(chan struct{}, 256)
		for i, id := range ids {
			if interrupted() || firstErr.Load() != nil {
				break
			}
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
			sem <- struct{}{}
			wg.Go(func() { defer func() { <-sem }(); sendOne(id) })
		}
	} else {
		var next atomic.Int64
		for range 64 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n && !interrupted() && firstErr.Load() == nil; i = int(next.Add(1)) - 1 {
					sendOne(ids[i])
				}
			})
		}
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return stats{}, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		w.mu.Lock()
		got := 0
		for _, id := range ids {
			if _, ok := w.got[id]; ok {
				got++
			}
		}
		w.mu.Unlock()
		if got == n || time.Now().After(deadline) || interrupted() {
			break
		}
		select {
		case <-w.arrived:
		case <-time.After(50 * time.Millisecond):
		}
	}
	st := stats{n: n}
	var last time.Time
	w.mu.Lock()
	for _, id := range ids {
		at, ok := w.got[id]
		if !ok {
			st.lost++
			continue
		}
		st.lat = append(st.lat, at.Sub(w.pending[id]))
		if made := w.made[id]; !made.IsZero() {
			st.service = append(st.service, made.Sub(w.pending[id]))
			st.delivery = append(st.delivery, at.Sub(made))
		}
		if at.After(last) {
			last = at
		}
		delete(w.got, id)
		delete(w.made, id)
		delete(w.pending, id)
	}
	w.mu.Unlock()
	for _, l := range [][]time.Duration{st.lat, st.service, st.delivery} {
		slices.Sort(l)
	}
	if len(st.lat) > 0 {
		st.rate = float64(len(st.lat)) / last.Sub(start).Seconds()
	}
	return st, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMs(d time.Duration) string { return fmt.Sprintf("%g ms", ms(d)) }

// requestPublisher publishes a session request of the bench user for
// workspace demo in the bench zone under the given request id.
func (e *env) requestPublisher(cl *client.Client) func(id string) error {
	return func(id string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err := cl.Publish(ctx, client.Request{RequestID: id, User: e.User, Workspace: e.name("demo"), Zone: e.Zone})
		return err
	}
}
