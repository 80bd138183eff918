package service_test

// Pools follow their configuration (issue 10): a workspace change rolls a
// staging pool by a surge under load, and containers removed behind
// Greenroom's back (make down, then make up) are not failed creations.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/moby/moby/client"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// rollPoolSize is the pool TestPoolRollsToANewImageUnderLoad rolls:
// GREENROOM_ROLL_POOL, default 5 (the number is for 10).
func rollPoolSize(t *testing.T) int {
	n := 5
	if v := os.Getenv("GREENROOM_ROLL_POOL"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("GREENROOM_ROLL_POOL=%q: want a positive number", v)
		}
	}
	return n
}

// rollRequestEvery is how often TestPoolRollsToANewImageUnderLoad
// requests a session: GREENROOM_ROLL_EVERY, default 3s. On this machine
// (2 cores, with the whole suite running) a new container takes seconds
// to be staged, so faster requests can drain a pool of 5 before its
// replacements are ready — the load a pool of that size cannot serve,
// roll or not — and leave the roll nothing of its own to release.
func rollRequestEvery(t *testing.T) time.Duration {
	if v := os.Getenv("GREENROOM_ROLL_EVERY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("GREENROOM_ROLL_EVERY=%q: want a positive duration", v)
		}
		return d
	}
	return 3 * time.Second
}

// rollLoad requests sessions of a pool steadily, as users would, through
// the claim the assigner makes; each one is destroyed once ready, so the
// load holds no capacity for long.
type rollLoad struct {
	e        *env
	f        fixture
	cfg      string
	every    time.Duration
	mu       sync.Mutex
	outcomes []rollOutcome
	claims   atomic.Int64
	// started counts requests as they begin, before their claim commits.
	started atomic.Int64
	// paused holds requests back while set.
	paused    atomic.Bool
	noneFound atomic.Int64
	errs      []error
}

// rollOutcome is one request during the roll.
type rollOutcome struct {
	// Revision is the revision of the staged session the request got.
	Revision string
	// Ready is from the claim (assigned_at) to running (running_at), by
	// the database's clock.
	Ready time.Duration
}

func (l *rollLoad) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(l.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if l.paused.Load() {
			continue
		}
		l.started.Add(1)
		s, rid, err := l.claim(ctx)
		if errors.Is(err, sessions.ErrNoneStaged) {
			// The assigner would have provisioned it on demand.
			l.noneFound.Add(1)
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				l.fail(fmt.Errorf("claiming: %w", err))
			}
			return
		}
		l.claims.Add(1)
		claimed := time.Now()
		// A request made is seen through, even once the load stops.
		wg.Go(func() { l.follow(l.e.ctx, s, rid, claimed) })
	}
}

// follow waits for a claimed session to be ready, then destroys it.
func (l *rollLoad) follow(ctx context.Context, s sessions.Session, rid string, claimed time.Time) {
	for ctx.Err() == nil {
		if l.e.countEvents(events.TypeSessionReady, dataIs("request_id", rid)) > 0 {
			now, err := sessions.Get(ctx, l.e.db, s.ID)
			if err != nil {
				l.fail(fmt.Errorf("reading session %s: %w", s.ID, err))
				return
			}
			l.mu.Lock()
			l.outcomes = append(l.outcomes, rollOutcome{Revision: s.Revision, Ready: now.RunningAt.Time.Sub(now.AssignedAt.Time)})
			l.mu.Unlock()
			break
		}
		if l.e.countEvents(events.TypeSessionFailed, dataIs("request_id", rid)) > 0 {
			l.fail(fmt.Errorf("request %s for staged session %s failed", rid, s.ID))
			return
		}
		if time.Since(claimed) > 30*time.Second {
			l.fail(fmt.Errorf("request %s: no session.ready after 30s", rid))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := db.InTx(ctx, l.e.db, func(tx *sqlx.Tx) error {
		_, err := outbox.Emit(ctx, tx, "greenroom/test", events.TypeSessionDestroy, events.TypeSessionDestroy,
			events.SessionDestroy{SessionID: s.ID, Reason: "roll_test"}, "")
		return err
	}); err != nil && ctx.Err() == nil {
		l.fail(fmt.Errorf("destroying %s: %w", s.ID, err))
	}
}

// claim is env.claimStaged, returning its error instead of failing the
// test (it runs off the test's goroutine).
func (l *rollLoad) claim(ctx context.Context) (sessions.Session, string, error) {
	requestID := "req-" + uuid.NewString()
	var s sessions.Session
	err := db.InTx(ctx, l.e.db, func(tx *sqlx.Tx) error {
		var perms events.Permissions
		if err := tx.GetContext(ctx, &perms, `SELECT allow_audio, allow_clipboard_down, allow_clipboard_up, allow_downloads,
			allow_microphone, allow_uploads, allow_gamepad FROM staging_configs WHERE id = $1`, l.cfg); err != nil {
			return err
		}
		var err error
		if s, err = sessions.ClaimStaged(ctx, tx, l.cfg, l.f.userID, requestID, perms); err != nil {
			return err
		}
		_, err = outbox.Emit(ctx, tx, "greenroom/assigner", events.TypeSessionAssigned, events.TypeSessionAssigned,
			events.SessionAssigned{RequestID: requestID, SessionID: s.ID, User: l.f.user, UserID: l.f.userID,
				Workspace: l.f.wsName, Zone: l.f.zone, StagingConfigID: l.cfg}, requestID)
		return err
	})
	return s, requestID, err
}

// served lists the requests served so far.
func (l *rollLoad) served() []rollOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.outcomes)
}

func (l *rollLoad) fail(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

// TestPoolRollsToANewImageUnderLoad changes a workspace's image while
// users request sessions of its staging pool steadily: every staged
// container ends up on the new image, every request is served staged, the
// pool never has fewer staged sessions than desired minus those claimed,
// and no stale staged session is destroyed before a fresh one replaced it.
func TestPoolRollsToANewImageUnderLoad(t *testing.T) {
	t.Parallel()
	desired := rollPoolSize(t)
	e := newEnv(t, envOptions{})
	newImage := "greenroom/demo-workspace:roll-test-" + uuid.NewString()[:8]
	if _, err := e.docker.ImageTag(e.ctx, client.ImageTagOptions{Source: demoImage, Target: newImage}); err != nil {
		t.Fatal(err)
	}
	// Registered after newEnv, so it runs before its containers are
	// removed: the engine refuses to untag a reference a container was
	// made from unless forced, and forcing only removes this tag (the
	// image keeps demoImage, and the containers keep running until the
	// env removes them).
	t.Cleanup(func() {
		if _, err := e.docker.ImageRemove(context.Background(), newImage, client.ImageRemoveOptions{Force: true}); err != nil {
			t.Errorf("removing the tag %s: %v", newImage, err)
		}
	})
	f := e.standardFixture(workspaceOptions{initDelay: "300ms", cores: 0.25, memoryMB: 32})
	// Room for the pool, its surge and the users' sessions.
	e.exec(`UPDATE agents SET cores = $2, memory_mb = 65536 WHERE id = $1`, f.agentID, float64(desired))
	cfg := e.addStagingConfig(f, desired, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	e.waitFor(fmt.Sprintf("%d staged sessions", desired), 60*time.Second, func() bool { return len(e.poolStaged(cfg)) == desired })
	e.waitFor("status ok", 10*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	oldRev := e.poolStaged(cfg)[0].Revision
	if oldRev == "" {
		t.Fatal("staged sessions record no revision")
	}

	loadCtx, stopLoad := context.WithCancel(e.ctx)
	load := &rollLoad{e: e, f: f, cfg: cfg, every: rollRequestEvery(t)}
	var loading sync.WaitGroup
	loading.Go(func() { load.run(loadCtx) })
	defer func() { stopLoad(); loading.Wait() }()

	// Let the load run against the steady pool for a moment; then, with
	// the pool full again, change the image as the config service's PATCH
	// does.
	e.waitFor("a first request served", 30*time.Second, func() bool { return len(load.served()) > 0 })
	load.paused.Store(true)
	e.waitFor(fmt.Sprintf("%d staged sessions again", desired), 60*time.Second, func() bool { return len(e.poolStaged(cfg)) == desired })
	claimsBefore := load.started.Load()
	e.exec(`UPDATE workspaces SET image = $2, updated_at = now() WHERE id = $1`, f.workspaceID, newImage)
	start := time.Now()
	e.emitOn(events.TypeConfigChanged+".workspace", events.TypeConfigChanged,
		events.ConfigChanged{Kind: "workspace", Op: "updated", ID: f.workspaceID, Name: f.wsName})
	load.paused.Store(false)

	// From the change on, the pool is sampled: staged sessions (of any
	// revision) against desired minus the requests made since.
	var low atomic.Value
	samples := atomic.Int64{}
	sampleCtx, stopSampling := context.WithCancel(e.ctx)
	var sampling sync.WaitGroup
	sampling.Go(func() {
		for sampleCtx.Err() == nil {
			var staged int
			if err := e.db.GetContext(sampleCtx, &staged, `SELECT count(*) FROM sessions WHERE staging_config_id = $1 AND status = 'staged'`, cfg); err != nil {
				continue
			}
			// Read after the count: every claim the count saw has begun.
			claimed := int(load.started.Load() - claimsBefore)
			samples.Add(1)
			if staged < desired-claimed {
				low.CompareAndSwap(nil, fmt.Sprintf("%d staged after %d requests, want at least %d", staged, claimed, desired-claimed))
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	defer func() { stopSampling(); sampling.Wait() }()

	// The roll is over for users once no session of the old revision is
	// left to hand out (claimed or replaced); then, without load, the pool
	// settles at desired, every one of the new revision.
	e.waitFor("no staged or provisioning session of the old revision", 120*time.Second, func() bool {
		return e.countSessionsOfRevision(cfg, oldRev, sessions.Provisioning, sessions.Staged) == 0
	})
	took := time.Since(start)
	claimsDuring := load.started.Load() - claimsBefore
	stopLoad()
	loading.Wait()
	stopSampling()
	sampling.Wait()
	var newRev string
	e.waitFor(fmt.Sprintf("%d staged sessions of the new revision", desired), 60*time.Second, func() bool {
		staged := e.poolStaged(cfg)
		for _, s := range staged {
			if s.Revision == oldRev {
				return false
			}
			newRev = s.Revision
		}
		return len(staged) == desired
	})
	settled := time.Since(start)
	e.waitIdle()

	for _, err := range load.errs {
		t.Error(err)
	}
	if n := load.noneFound.Load(); n > 0 {
		t.Errorf("%d requests found no staged session: they would have been served on demand", n)
	}
	if msg := low.Load(); msg != nil {
		t.Errorf("the pool ran low during the roll: %s", msg)
	}
	for _, s := range e.poolStaged(cfg) {
		c, err := e.inspect(s.ContainerID)
		if err != nil {
			t.Fatalf("inspecting the container of staged session %s: %v", s.ID, err)
		}
		if c.Config.Image != newImage || s.Revision != newRev {
			t.Errorf("staged session %s (revision %s) runs image %s, want %s", s.ID, s.Revision, c.Config.Image, newImage)
		}
	}
	released := e.checkRollReplacedBeforeDestroying(cfg, oldRev)
	e.waitFor("status ok after the roll", 10*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	if n := e.countEvents(events.TypeStagingShortfall, dataIs("staging_config_id", cfg)); n != 0 {
		t.Errorf("%d staging.shortfall events during the roll", n)
	}

	var stale, fresh int
	var readyStale, readyFresh []time.Duration
	for _, o := range load.served() {
		if o.Revision == oldRev {
			stale++
			readyStale = append(readyStale, o.Ready)
		} else {
			fresh++
			readyFresh = append(readyFresh, o.Ready)
		}
	}
	t.Logf("pool of %d rolled to a new image under load in %s (no old-revision session left to hand out); settled at %d staged of the new revision after %s (demo image, init delay 300ms, refill concurrency 4); %d samples",
		desired, took.Round(time.Millisecond), desired, settled.Round(time.Millisecond), samples.Load())
	t.Logf("one request every %s: %d before the change, %d during the roll, %d in all, every one served staged: %d from the old revision (assigned → running p50 %s), %d from the new (p50 %s); %d found none staged (would be on demand)",
		load.every, claimsBefore, claimsDuring, load.claims.Load(), stale, p50(readyStale), fresh, p50(readyFresh), load.noneFound.Load())
	t.Logf("the %d staged sessions of the old revision: %d handed to users during the roll, %d destroyed by it once replaced", desired, stale-int(claimsBefore), released)
	if int64(stale+fresh) != load.claims.Load() {
		t.Errorf("%d requests claimed, %d served", load.claims.Load(), stale+fresh)
	}
}

// countSessionsOfRevision counts cfg's sessions of a revision in statuses.
func (e *env) countSessionsOfRevision(cfg, revision string, statuses ...sessions.Status) int {
	e.t.Helper()
	n := 0
	for _, st := range statuses {
		var c int
		if err := e.db.GetContext(e.ctx, &c, `SELECT count(*) FROM sessions WHERE staging_config_id = $1 AND revision = $2 AND status = $3`,
			cfg, revision, string(st)); err != nil {
			e.t.Fatal(err)
		}
		n += c
	}
	return n
}

// checkRollReplacedBeforeDestroying checks the surge: whenever the pool
// destroyed a staged session of the old revision (session.destroy,
// pool_roll), at least as many sessions of the new one had been staged;
// and each such session's session.destroyed says it was rolled. It
// returns how many stale staged sessions the roll destroyed.
func (e *env) checkRollReplacedBeforeDestroying(cfg, oldRev string) int {
	e.t.Helper()
	var freshStaged []time.Time
	if err := e.db.SelectContext(e.ctx, &freshStaged, `SELECT staged_at FROM sessions
		WHERE staging_config_id = $1 AND revision <> $2 AND staged_at IS NOT NULL ORDER BY staged_at`, cfg, oldRev); err != nil {
		e.t.Fatal(err)
	}
	var staleStaged []string
	if err := e.db.SelectContext(e.ctx, &staleStaged, `SELECT id FROM sessions
		WHERE staging_config_id = $1 AND revision = $2 AND staged_at IS NOT NULL`, cfg, oldRev); err != nil {
		e.t.Fatal(err)
	}
	var destroys []time.Time
	var rolled []string
	e.mu.Lock()
	for _, ev := range e.events {
		if ev.Type != events.TypeSessionDestroy {
			continue
		}
		var d events.SessionDestroy
		if err := ev.DecodeData(&d); err != nil || d.Reason != events.DestroyReasonPoolRoll || !slices.Contains(staleStaged, d.SessionID) {
			continue
		}
		destroys = append(destroys, ev.Time)
		rolled = append(rolled, d.SessionID)
	}
	e.mu.Unlock()
	for _, id := range rolled {
		d := decode[events.SessionDestroyed](e.t, e.waitEvent(events.TypeSessionDestroyed, 30*time.Second, dataIs("session_id", id)))
		if d.Reason != events.DestroyReasonPoolRoll || d.Cause != events.CauseRolled {
			e.t.Errorf("session.destroyed of a stale session the roll replaced = %+v, want reason pool_roll, cause rolled", d)
		}
	}
	slices.SortFunc(destroys, func(a, b time.Time) int { return a.Compare(b) })
	for i, at := range destroys {
		staged := 0
		for _, s := range freshStaged {
			if !s.After(at) {
				staged++
			}
		}
		if staged < i+1 {
			e.t.Errorf("destroy %d of a stale session at %s came with only %d fresh sessions staged", i+1, at.Format(time.StampMilli), staged)
		}
	}
	return len(destroys)
}

func p50(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2].Round(time.Millisecond)
}

// TestStagedContainersRemovedWhileNothingRanRefillWithoutShortfall is
// `make down && make up`: every staged container of a pool is removed
// while no provisioner runs, seconds after being staged. The provisioner
// that starts next finds them missing and fails their sessions
// (container_gone: missing); that is no failed creation of the pool — it
// refills to desired with status ok and never says shortfall.
func TestStagedContainersRemovedWhileNothingRanRefillWithoutShortfall(t *testing.T) {
	t.Parallel()
	// The provisioner starts within seconds of the removals, so its engine
	// watcher replays their events (resumeMargin): docker rm -f of a
	// running container reports it killed ("die", exit code 137) before
	// removed, and a replayed death of a container that is gone must read
	// as a removal, as the audit at start reads it (missing).
	cfgs := service.Config{
		ContainerAudit: audit.ContainerAuditorConfig{Interval: 100 * time.Millisecond, GracePeriod: 100 * time.Millisecond},
	}
	e := newEnv(t, envOptions{cfg: cfgs, noService: true})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 3, events.Permissions{})

	first := e.startReplica(cfgs)
	first.Reconciler.Trigger(cfg)
	e.waitFor("3 staged sessions", 30*time.Second, func() bool { return len(e.poolStaged(cfg)) == 3 })
	e.waitFor("status ok", 10*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	lost := e.poolStaged(cfg)
	first.stop() // make down: the services stop …
	for _, s := range lost {
		e.removeBehindGreenroom(s.ContainerID) // … and their containers are removed
	}

	start := time.Now()
	second := e.startReplica(cfgs) // make up
	defer second.stop()
	for _, s := range lost {
		e.waitFor("the lost session failed", 30*time.Second, func() bool { return e.session(s.ID).Status == sessions.Failed })
		if got := e.session(s.ID).FailureReason; !seenRemoved(got) && got != "container_gone: removed" {
			t.Errorf("lost session failed with %q, want its container seen missing or removed", got)
		}
	}
	e.waitFor("3 new staged sessions", 30*time.Second, func() bool {
		now := e.poolStaged(cfg)
		return len(now) == 3 && !slices.ContainsFunc(now, func(s sessions.Session) bool {
			return slices.ContainsFunc(lost, func(l sessions.Session) bool { return l.ID == s.ID })
		})
	})
	e.waitFor("status ok", 10*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	t.Logf("restart with 3 staged containers removed → pool back to 3 staged and ok: %s", time.Since(start).Round(time.Millisecond))
	e.waitIdle()
	if n := e.countEvents(events.TypeStagingShortfall, dataIs("staging_config_id", cfg)); n != 0 {
		t.Errorf("%d staging.shortfall events for containers removed behind Greenroom's back", n)
	}
	if c := e.poolConfig(cfg); c.Status != "ok" || c.LastError != "" {
		t.Errorf("staging config %+v, want ok with no last_error", c)
	}
}

// replica is a provisioner the test starts and stops itself.
type replica struct {
	*service.Service
	stop func()
}

// startReplica starts a provisioner on the test's database and bus, with
// its own connections and the env's labels (for an env made with
// noService); stop stops it and waits for it, as make down does.
func (e *env) startReplica(cfg service.Config) replica {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	deps, err := app.Connect(ctx, "provisioner", settings.Common{
		DatabaseURL: e.dbURL, NatsURL: e.deps.NC.ConnectedUrl(), StreamReplicas: 1, ShutdownTimeout: 30 * time.Second,
	}, zaptest.NewLogger(e.t, zaptest.Level(zapcore.WarnLevel)), 10*time.Second)
	if err != nil {
		cancel()
		e.t.Fatalf("connecting a provisioner: %v", err)
	}
	cfg.Provision.ExtraLabels = map[string]string{testLabel: e.label}
	cfg.Provision.ReadinessTimeout = max(cfg.Provision.ReadinessTimeout, 20*time.Second)
	if cfg.Reconciler.Interval == 0 {
		cfg.Reconciler.Interval = time.Hour
	}
	svc, err := service.New(deps, cfg)
	if err != nil {
		cancel()
		deps.Close()
		e.t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		cancel()
		deps.Close()
		e.t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			svc.Stop()
			if err := svc.Err(); err != nil {
				e.t.Errorf("provisioner stopped with: %v", err)
			}
			deps.Close()
		})
	}
	e.t.Cleanup(stop)
	return replica{Service: svc, stop: stop}
}

// poolRevision is staging config cfg's current revision, as the
// reconciler computes it (domain.PoolRevision).
func (e *env) poolRevision(cfg string) string {
	e.t.Helper()
	var row struct {
		Revision int64  `db:"revision"`
		Origin   string `db:"allow_origin_domain"`
		Auth     string `db:"upstream_auth_address"`
		events.Permissions
	}
	if err := e.db.GetContext(e.ctx, &row, `SELECT w.revision, z.allow_origin_domain, z.upstream_auth_address,
			c.allow_audio, c.allow_clipboard_down, c.allow_clipboard_up, c.allow_downloads,
			c.allow_microphone, c.allow_uploads, c.allow_gamepad
		FROM staging_configs c JOIN workspaces w ON w.id = c.workspace_id JOIN zones z ON z.id = c.zone_id
		WHERE c.id = $1`, cfg); err != nil {
		e.t.Fatal(err)
	}
	return domain.PoolRevision(row.Revision, row.Permissions, row.Origin, row.Auth)
}
