package service_test

// The staging pool lifecycle against real Docker (issue 4): fill, backfill,
// shrink, delete, expire, replicas, shortfall and recovery, placement by
// capacity. Each test is named after the rule it checks.

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

func TestThreeDesiredGivesThreeReadyContainers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "300ms"})
	cfg := e.addStagingConfig(f, 3, events.Permissions{AllowAudio: true})
	start := time.Now()
	e.poolConfigChanged(cfg, "created")

	e.waitFor("3 staged sessions", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 3 })
	t.Logf("pool of 3 staged in %s (demo image, init delay 300ms)", time.Since(start).Round(time.Millisecond))
	e.waitFor("status ok", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	list := e.poolContainers(cfg)
	if len(list) != 3 {
		t.Fatalf("%d containers for the pool, want 3", len(list))
	}
	for _, c := range list {
		if c.State != "running" {
			t.Errorf("container %s is %s", c.ID[:12], c.State)
		}
	}
	for _, s := range e.poolStaged(cfg) {
		if s.UserID.Valid {
			t.Errorf("staged session %s has a user", s.ID)
		}
		if code, body := httpGet(t, strings.TrimSuffix(s.UpstreamURL, "/")+"/healthz"); code != 200 {
			t.Errorf("staged session %s does not answer: %d %q", s.ID, code, body)
		}
	}
	if n := e.countEvents(events.TypeStagingShortfall, dataIs("staging_config_id", cfg)); n != 0 {
		t.Errorf("%d staging.shortfall events for a pool that filled", n)
	}
}

func TestAssigningOneRefillsBackToThree(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "300ms"})
	cfg := e.addStagingConfig(f, 3, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	e.waitFor("3 staged sessions", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 3 })

	claimed, rid := e.claimStaged(f, cfg)
	start := time.Now()
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	e.waitFor("3 staged sessions besides the claimed one", 120*time.Second, func() bool {
		staged := e.poolStaged(cfg)
		return len(staged) == 3 && !slices.ContainsFunc(staged, func(s sessions.Session) bool { return s.ID == claimed.ID })
	})
	t.Logf("claim → pool back to 3 staged: %s (demo image, init delay 300ms)", time.Since(start).Round(time.Millisecond))
	if s := e.session(claimed.ID); s.Status != sessions.Running || s.UserID.String != f.userID {
		t.Errorf("claimed session is %s for user %v, want running for %s", s.Status, s.UserID, f.userID)
	}
	if n := len(e.poolContainers(cfg)); n != 4 {
		t.Errorf("%d containers carry the pool's label, want 4: 3 staged and the user's", n)
	}
	e.waitFor("status ok", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
}

func TestLoweringThreeToOneDestroysTwoWithinSeconds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 3, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	e.waitFor("3 staged sessions", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 3 })
	before := e.poolStaged(cfg) // oldest first

	e.exec(`UPDATE staging_configs SET desired_sessions = 1 WHERE id = $1`, cfg)
	start := time.Now()
	e.poolConfigChanged(cfg, "updated")
	e.waitFor("1 container left", 5*time.Second, func() bool { return len(e.poolContainers(cfg)) == 1 })
	t.Logf("3 → 1: two containers gone after %s", time.Since(start).Round(time.Millisecond))
	if s := e.session(before[0].ID); s.Status != sessions.Staged {
		t.Errorf("the oldest staged session is %s, want it kept", s.Status)
	}
	for _, s := range before[1:] {
		ev := e.waitEvent(events.TypeSessionDestroyed, 10*time.Second, dataIs("session_id", s.ID))
		if d := decode[events.SessionDestroyed](t, ev); d.Reason != "pool_shrink" || d.Cause != events.CauseShrunk {
			t.Errorf("session.destroyed = %+v, want reason pool_shrink, cause shrunk", d)
		}
	}
	e.waitFor("status ok", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
}

// TestLoweringDesiredDestroysSessionsStillProvisioning: sessions whose
// containers are still starting are given up first, and their containers
// do not outlive them.
func TestLoweringDesiredDestroysSessionsStillProvisioning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	e.waitFor("1 staged session", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 1 })
	kept := e.poolStaged(cfg)[0]

	// New containers now take 30 s to answer: raising desired leaves three
	// sessions provisioning with their containers running.
	e.exec(`UPDATE workspaces SET run_config = '{"environment": {"GREENROOM_DEMO_INIT_DELAY": "30s"}}' WHERE id = $1`, f.workspaceID)
	// That is also a new revision of the workspace, which would roll the
	// pool (TestPoolRollsToANewImageUnderLoad); the staged session is made
	// current so that only the shrink is seen here.
	e.exec(`UPDATE sessions SET revision = $2 WHERE id = $1`, kept.ID, e.poolRevision(cfg))
	e.exec(`UPDATE staging_configs SET desired_sessions = 4 WHERE id = $1`, cfg)
	e.poolConfigChanged(cfg, "updated")
	e.waitFor("4 containers", 20*time.Second, func() bool { return len(e.poolContainers(cfg)) == 4 })
	if n := e.countSessions(cfg, sessions.Provisioning); n != 3 {
		t.Fatalf("%d sessions provisioning, want 3", n)
	}

	e.exec(`UPDATE staging_configs SET desired_sessions = 1 WHERE id = $1`, cfg)
	start := time.Now()
	e.poolConfigChanged(cfg, "updated")
	e.waitFor("only the staged container left", 60*time.Second, func() bool {
		list := e.poolContainers(cfg)
		return len(list) == 1 && list[0].Labels[domain.LabelSession] == kept.ID
	})
	t.Logf("4 → 1 with 3 provisioning: their containers gone after %s", time.Since(start).Round(time.Millisecond))
	e.waitIdle()
	if n := e.countSessions(cfg, sessions.Provisioning, sessions.Destroying, sessions.Failed); n != 0 {
		t.Errorf("%d sessions left provisioning, destroying or failed, want all 3 destroyed", n)
	}
	if s := e.session(kept.ID); s.Status != sessions.Staged {
		t.Errorf("the staged session is %s, want it kept", s.Status)
	}
	if st := e.configStatus(cfg); st != "ok" {
		t.Errorf("status %s, want ok", st)
	}
}

func TestOneToZeroAndDeleteConfigLeaveNoContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	e.waitFor("1 staged session", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 1 })
	first := e.poolStaged(cfg)[0]

	e.exec(`UPDATE staging_configs SET desired_sessions = 0 WHERE id = $1`, cfg)
	e.poolConfigChanged(cfg, "updated")
	e.waitFor("no container at desired 0", 60*time.Second, func() bool { return len(e.poolContainers(cfg)) == 0 })
	if d := decode[events.SessionDestroyed](t, e.waitEvent(events.TypeSessionDestroyed, 10*time.Second, dataIs("session_id", first.ID))); d.Cause != events.CauseShrunk {
		t.Errorf("session.destroyed at desired 0 = %+v, want cause shrunk", d)
	}
	e.waitFor("status ok at desired 0", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })

	e.exec(`UPDATE staging_configs SET desired_sessions = 1 WHERE id = $1`, cfg)
	e.poolConfigChanged(cfg, "updated")
	e.waitFor("1 staged session again", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 1 })
	second := e.poolStaged(cfg)[0]

	// What the config service's DELETE does.
	e.exec(`UPDATE staging_configs SET deleted_at = now() WHERE id = $1`, cfg)
	e.poolConfigChanged(cfg, "deleted")
	e.waitFor("no container after the delete", 60*time.Second, func() bool { return len(e.poolContainers(cfg)) == 0 })
	d := decode[events.SessionDestroyed](t, e.waitEvent(events.TypeSessionDestroyed, 10*time.Second, dataIs("session_id", second.ID)))
	if d.Reason != events.DestroyReasonStagingConfigDeleted || d.Cause != events.CauseDeleted {
		t.Errorf("session.destroyed after the delete = %+v, want reason staging_config_deleted, cause deleted", d)
	}
	e.svc.Reconciler.Trigger("")
	e.waitIdle()
	if n := e.countSessions(cfg, sessions.Provisioning, sessions.Staged, sessions.Destroying); n != 0 {
		t.Errorf("%d live sessions of a deleted staging config", n)
	}
	if n := len(e.poolContainers(cfg)); n != 0 {
		t.Errorf("%d containers of a deleted staging config", n)
	}
}

// TestStagedSessionPastExpirationIsReplaced drives the expiry with an
// injected clock: the expiry service's staged-session timer, as it fires
// at a given time (see poolExpireStaged).
func TestStagedSessionPastExpirationIsReplaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 2, events.Permissions{}) // expiration_hours 2
	e.poolConfigChanged(cfg, "created")
	e.waitFor("2 staged sessions", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 2 })
	old := e.poolStaged(cfg)

	if expired := e.poolExpireStaged(time.Now().Add(time.Hour)); len(expired) != 0 {
		t.Fatalf("an hour on, %d staged sessions expired, want none before 2 hours", len(expired))
	}
	expired := e.poolExpireStaged(time.Now().Add(2*time.Hour + time.Minute))
	if len(expired) != 2 {
		t.Fatalf("2 hours on, %d staged sessions expired, want 2", len(expired))
	}
	for _, s := range old {
		d := decode[events.SessionDestroyed](t, e.waitEvent(events.TypeSessionDestroyed, 30*time.Second, dataIs("session_id", s.ID)))
		if d.Reason != events.ExpiredStaged || d.Cause != events.CauseExpired {
			t.Errorf("session.destroyed = %+v, want reason staged_expired, cause expired", d)
		}
		if n := len(e.containers(map[string]string{domain.LabelSession: s.ID})); n != 0 {
			t.Errorf("%d containers left for expired session %s", n, s.ID)
		}
	}
	e.waitFor("2 new staged sessions", 120*time.Second, func() bool {
		now := e.poolStaged(cfg)
		return len(now) == 2 && !slices.ContainsFunc(now, func(s sessions.Session) bool { return s.ID == old[0].ID || s.ID == old[1].ID })
	})
	if n := len(e.poolContainers(cfg)); n != 2 {
		t.Errorf("%d containers for the pool, want 2", n)
	}
}

func TestAgentTooSmallGivesShortfallThenCapacityGivesOK(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: service.Config{Reconciler: staging.ReconcilerConfig{Interval: 100 * time.Millisecond}}})
	f := fixture{zone: "zone-a", agent: "agent-a1", wsName: "big", user: "alice"}
	f.zoneID = e.addZone(f.zone, "least_load")
	f.agentID = e.addAgent(f.zoneID, f.agent, 0.5, 4096)
	f.workspaceID = e.addWorkspace(f.wsName, workspaceOptions{cores: 1, initDelay: "0s"})
	f.userID = e.addUser(f.user)
	cfg := e.addStagingConfig(f, 2, events.Permissions{})
	e.poolConfigChanged(cfg, "created")

	ev := e.waitEvent(events.TypeStagingShortfall, 10*time.Second, dataIs("staging_config_id", cfg))
	want := "no_capacity: zone-a: agent agent-a1 has 0.5 free cores, needs 1"
	if d := decode[events.StagingShortfall](t, ev); d.Reason != want || d.Permanent || d.Desired != 2 || d.Current != 0 || d.Zone != f.zone || d.Workspace != f.wsName {
		t.Errorf("staging.shortfall = %+v, want reason %q, transient, desired 2, current 0", d, want)
	}
	c := e.poolConfig(cfg)
	if c.Status != "shortfall" || c.LastError != want || !c.LastErrorAt.Valid || time.Since(c.LastErrorAt.Time) > time.Minute {
		t.Errorf("staging config = %+v, want shortfall with %q just now", c, want)
	}
	// The reconciler keeps looking (every 100 ms here) without saying it again.
	e.waitFor("5 more passes held back for capacity", 60*time.Second, func() bool {
		return e.counter("greenroom_provisioner_pool_held_back_total", map[string]string{"why": "no_capacity"}) >= 6
	})
	e.waitIdle()
	if n := e.countEvents(events.TypeStagingShortfall, dataIs("staging_config_id", cfg)); n != 1 {
		t.Errorf("%d staging.shortfall events, want 1 (once per change of cause)", n)
	}
	var rows int
	if err := e.db.GetContext(e.ctx, &rows, `SELECT count(*) FROM sessions WHERE staging_config_id = $1`, cfg); err != nil || rows != 0 {
		t.Errorf("%d session rows for a pool with no room (err %v), want none", rows, err)
	}

	// What the config service's PATCH of the agent does.
	e.exec(`UPDATE agents SET cores = 4, updated_at = now() WHERE id = $1`, f.agentID)
	start := time.Now()
	e.emitOn(events.TypeConfigChanged+".agent", events.TypeConfigChanged, events.ConfigChanged{Kind: "agent", Op: "updated", ID: f.agentID, Name: f.agent})
	e.waitFor("2 staged sessions", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 2 })
	e.waitFor("status ok", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	t.Logf("capacity added → pool of 2 staged and ok: %s", time.Since(start).Round(time.Millisecond))
	if n := e.countEvents(events.TypeStagingShortfall, dataIs("staging_config_id", cfg)); n != 1 {
		t.Errorf("%d staging.shortfall events after recovery, want still 1", n)
	}
}

// TestTwoProvisionerReplicasKeepExactlyDesired runs two complete
// provisioners on one database and one bus, each reconciling every 100 ms
// and on every trigger, and samples the pool while it fills: never more
// sessions or containers than desired, and never more on the agent than
// it has room for.
func TestTwoProvisionerReplicasKeepExactlyDesired(t *testing.T) {
	t.Parallel()
	cfgs := service.Config{Reconciler: staging.ReconcilerConfig{Interval: 100 * time.Millisecond}}
	e := newEnv(t, envOptions{cfg: cfgs})
	replica := e.poolReplica(cfgs)
	f := e.standardFixture(workspaceOptions{initDelay: "300ms", cores: 0.5}) // the agent has room for 8
	cfg := e.addStagingConfig(f, 5, events.Permissions{})

	var over atomic.Value
	sampleCtx, stopSampling := context.WithCancel(e.ctx)
	var sampled sync.WaitGroup
	samples := 0
	limit := atomic.Int64{}
	limit.Store(5)
	sampled.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for ; sampleCtx.Err() == nil; <-tick.C {
			var live int
			var cores float64
			if err := e.db.QueryRowContext(sampleCtx, `SELECT count(*) FILTER (WHERE staging_config_id = $1 AND status IN ('provisioning', 'staged', 'assigning')),
					COALESCE(sum(cores) FILTER (WHERE agent_id = $2 AND status NOT IN ('destroyed', 'failed')), 0)
				FROM sessions`, cfg, f.agentID).Scan(&live, &cores); err != nil {
				continue
			}
			list, err := e.docker.ContainerList(sampleCtx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
				Add("label", testLabel+"="+e.label, domain.LabelStagingConfig+"="+cfg)})
			if err != nil {
				continue
			}
			samples++
			if n := int(limit.Load()); live > n || len(list.Items) > n || cores > 4 {
				over.CompareAndSwap(nil, fmt.Sprintf("%d live sessions, %d containers, %.1f cores on the agent; limit %d sessions, 4 cores", live, len(list.Items), cores, n))
			}
		}
	})
	stop := func() {
		stopSampling()
		sampled.Wait()
	}
	defer stop()

	// Both replicas are told, again and again, while the pool fills.
	for range 5 {
		e.svc.Reconciler.ConfigChanged(cfg)
		replica.Reconciler.ConfigChanged(cfg)
	}
	e.waitFor("5 staged sessions", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 5 })

	// Then more than the agent can host: 8 fit (4 cores, 0.5 each).
	limit.Store(8)
	e.exec(`UPDATE staging_configs SET desired_sessions = 10 WHERE id = $1`, cfg)
	e.poolConfigChanged(cfg, "updated")
	replica.Reconciler.ConfigChanged(cfg)
	e.waitFor("8 staged sessions and a shortfall", 120*time.Second, func() bool {
		return len(e.poolStaged(cfg)) == 8 && e.configStatus(cfg) == "shortfall"
	})
	if c := e.poolConfig(cfg); !strings.HasPrefix(c.LastError, "no_capacity: zone-a: agent agent-a1 has 0 free cores, needs 0.5") {
		t.Errorf("last_error %q", c.LastError)
	}

	// And back to 5: exactly 5 again.
	e.exec(`UPDATE staging_configs SET desired_sessions = 5 WHERE id = $1`, cfg)
	e.poolConfigChanged(cfg, "updated")
	e.waitFor("5 containers", 120*time.Second, func() bool { return len(e.poolContainers(cfg)) == 5 })
	stop()
	e.waitIdle()
	if n := len(e.poolStaged(cfg)); n != 5 {
		t.Errorf("%d staged sessions at the end, want 5", n)
	}
	if n := e.countSessions(cfg, sessions.Failed); n != 0 {
		t.Errorf("%d sessions failed: rows were made that could not be placed", n)
	}
	if msg := over.Load(); msg != nil {
		t.Errorf("over the limit while filling: %s", msg)
	}
	e.waitFor("status ok", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	t.Logf("%d samples taken while filling", samples)
}

// TestShortfallRetriesBackOffNotHotLoop counts creation attempts over ten
// seconds of a pool whose creations fail, with the periodic pass running
// every 100 ms: a missing image (permanent) is not retried within the
// window (its backoff starts at a minute); a container that exits at once
// (transient) is retried 1 s, 2 s, 4 s after each failure. Either way the
// pool says why once.
func TestShortfallRetriesBackOffNotHotLoop(t *testing.T) {
	t.Parallel()
	const window = 10 * time.Second
	for _, tc := range []struct {
		name        string
		ws          workspaceOptions
		kind        string
		permanent   bool
		minAttempts int
		maxAttempts int
	}{
		{"missing image", workspaceOptions{image: "greenroom/never-built:" + uuid.NewString()[:8], initDelay: "0s"}, "image_missing", true, 1, 1},
		{"container exits at once", workspaceOptions{initDelay: "not-a-duration"}, "provisioning_failed", false, 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{cfg: service.Config{Reconciler: staging.ReconcilerConfig{Interval: 100 * time.Millisecond}}})
			f := e.standardFixture(tc.ws)
			cfg := e.addStagingConfig(f, 1, events.Permissions{})
			e.poolConfigChanged(cfg, "created")
			e.waitFor("a first attempt", 20*time.Second, func() bool { return len(e.poolAttempts(cfg)) > 0 })
			first := e.poolAttempts(cfg)[0].CreatedAt

			deadline := time.NewTimer(time.Until(first.Add(window)))
			defer deadline.Stop()
			poll := time.NewTicker(50 * time.Millisecond)
			defer poll.Stop()
			for waiting := true; waiting; {
				select {
				case <-deadline.C:
					waiting = false
				case <-poll.C:
					if n := poolRetries(e.poolAttempts(cfg)); n > tc.maxAttempts {
						t.Fatalf("%d creation rounds within %s of the first: a hot loop", n, time.Since(first).Round(time.Millisecond))
					}
				}
			}
			attempts := e.poolAttempts(cfg)
			rounds := poolRetries(attempts)
			t.Logf("%d creation rounds (%d sessions) in %s", rounds, len(attempts), window)
			if rounds > tc.maxAttempts {
				t.Errorf("%d creation rounds in %s, want at most %d", rounds, window, tc.maxAttempts)
			}
			// A loaded machine makes fewer rounds in the window, never more:
			// the rounds a transient failure is retried in are waited for
			// (their spacing, checked below, is the backoff).
			e.waitFor(fmt.Sprintf("%d creation rounds", tc.minAttempts), 90*time.Second, func() bool {
				return poolRetries(e.poolAttempts(cfg)) >= tc.minAttempts
			})
			attempts = e.poolAttempts(cfg)
			// Each retry waits at least its backoff after the last failure.
			for i, want := 1, time.Second; i < len(attempts); i++ {
				if attempts[i].CreatedAt.Sub(attempts[i-1].CreatedAt) < 100*time.Millisecond {
					continue // same round
				}
				if gap := attempts[i].CreatedAt.Sub(attempts[i-1].FailedAt.Time); gap < want {
					t.Errorf("retry %s after the failure before it, want ≥ %s", gap, want)
				}
				want *= 2
			}

			e.waitIdle()
			c := e.poolConfig(cfg)
			if c.Status != "shortfall" || !strings.HasPrefix(c.LastError, tc.kind+": ") {
				t.Errorf("staging config %+v, want shortfall %s", c, tc.kind)
			}
			if n := e.countEvents(events.TypeStagingShortfall, dataIs("staging_config_id", cfg)); n != 1 {
				t.Errorf("%d staging.shortfall events over %d failures, want 1", n, len(attempts))
			}
			ev := e.waitEvent(events.TypeStagingShortfall, time.Second, dataIs("staging_config_id", cfg))
			if d := decode[events.StagingShortfall](t, ev); d.Permanent != tc.permanent {
				t.Errorf("staging.shortfall permanent = %v, want %v", d.Permanent, tc.permanent)
			}
		})
	}
}

// TestMissingImageIsPermanentAndRecoversWhenBuilt: nobody touches the pool
// after the image appears (no configuration change); the periodic pass
// retries it once the permanent backoff (here 0.5 s to 1 s) is over.
func TestMissingImageIsPermanentAndRecoversWhenBuilt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: service.Config{Reconciler: staging.ReconcilerConfig{
		Interval: 200 * time.Millisecond, PermanentBackoffMin: 500 * time.Millisecond, PermanentBackoffMax: time.Second,
	}}})
	img := "greenroom/built-later:" + uuid.NewString()[:8]
	t.Cleanup(func() {
		_, _ = e.docker.ImageRemove(context.Background(), img, client.ImageRemoveOptions{})
	})
	f := e.standardFixture(workspaceOptions{image: img, initDelay: "0s"})
	cfg := e.addStagingConfig(f, 2, events.Permissions{})
	e.poolConfigChanged(cfg, "created")

	ev := e.waitEvent(events.TypeStagingShortfall, 20*time.Second, dataIs("staging_config_id", cfg))
	want := "image_missing: image " + img + " is not on agent agent-a1 (Greenroom never pulls images: build or load it there)"
	if d := decode[events.StagingShortfall](t, ev); d.Reason != want || !d.Permanent {
		t.Errorf("staging.shortfall = %+v, want permanent %q", d, want)
	}
	if c := e.poolConfig(cfg); c.Status != "shortfall" || c.LastError != want {
		t.Errorf("staging config = %+v", c)
	}
	failed := e.waitEvent(events.TypeSessionFailed, 5*time.Second, nil)
	if d := decode[events.SessionFailed](t, failed); d.Reason != events.ReasonProvisioningFailed || !strings.Contains(d.Detail, img) {
		t.Errorf("session.failed = %+v", d)
	}

	// "Build" the image: tag the demo image under the missing name.
	if _, err := e.docker.ImageTag(e.ctx, client.ImageTagOptions{Source: demoImage, Target: img}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.waitFor("2 staged sessions", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 2 })
	e.waitFor("status ok", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	t.Logf("image built → pool of 2 staged and ok: %s", time.Since(start).Round(time.Millisecond))
	if n := e.countEvents(events.TypeStagingShortfall, dataIs("staging_config_id", cfg)); n != 1 {
		t.Errorf("%d staging.shortfall events, want 1", n)
	}
}

func TestLeastLoadSpreadsAndMostLoadPacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ws := e.addWorkspace("demo", workspaceOptions{initDelay: "0s", cores: 0.5})
	agents := map[string]string{}
	var cfgs []string
	for _, z := range []struct{ zone, lb string }{{"spread", "least_load"}, {"pack", "most_load"}} {
		f := fixture{zone: z.zone, zoneID: e.addZone(z.zone, z.lb), workspaceID: ws}
		for _, a := range []string{z.zone + "-1", z.zone + "-2"} {
			agents[a] = e.addAgent(f.zoneID, a, 4, 4096)
		}
		cfg := e.addStagingConfig(f, 4, events.Permissions{})
		cfgs = append(cfgs, cfg)
		e.poolConfigChanged(cfg, "created")
	}
	e.waitFor("4 staged sessions in each zone", 120*time.Second, func() bool {
		return len(e.poolStaged(cfgs[0])) == 4 && len(e.poolStaged(cfgs[1])) == 4
	})
	per := map[string]int{}
	for _, c := range e.containers(nil) {
		per[c.Labels[domain.LabelAgent]]++
	}
	want := map[string]int{"spread-1": 2, "spread-2": 2, "pack-1": 4}
	for a := range agents {
		if per[a] != want[a] {
			t.Errorf("containers per agent %v, want %v (least_load spreads, most_load packs)", per, want)
			break
		}
	}
}

func TestDisabledAgentGetsNothingNew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"}) // agent-a1, least_load
	a2 := e.addAgent(f.zoneID, "agent-a2", 4, 4096)
	e.exec(`UPDATE agents SET enabled = false WHERE id = $1`, a2)
	cfg := e.addStagingConfig(f, 3, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	e.waitFor("3 staged sessions", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 3 })
	if per := e.poolContainersPerAgent(cfg); per["agent-a1"] != 3 || per["agent-a2"] != 0 {
		t.Errorf("containers per agent %v, want all 3 on agent-a1: agent-a2 is disabled", per)
	}

	// Swap them: a1's sessions stay where they are; new ones go to a2.
	e.exec(`UPDATE agents SET enabled = (id = $1)`, a2)
	e.emitOn(events.TypeConfigChanged+".agent", events.TypeConfigChanged, events.ConfigChanged{Kind: "agent", Op: "updated", ID: f.agentID, Name: f.agent})
	_, rid := e.claimStaged(f, cfg)
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	e.waitFor("the replacement staged", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 3 })
	if per := e.poolContainersPerAgent(cfg); per["agent-a1"] != 3 || per["agent-a2"] != 1 {
		t.Errorf("containers per agent %v, want agent-a1 keeping its 3 (one now the user's) and the replacement on agent-a2", per)
	}
}

// poolConfigChanged announces a change of staging config id, as the config
// service does (op: created, updated, deleted).
func (e *env) poolConfigChanged(id, op string) {
	e.t.Helper()
	e.emitOn(events.TypeConfigChanged+".staging_config", events.TypeConfigChanged, events.ConfigChanged{Kind: "staging_config", Op: op, ID: id})
}

// poolContainers lists the containers, running or not, labelled as
// staging config cfg's.
func (e *env) poolContainers(cfg string) []container.Summary {
	e.t.Helper()
	return e.containers(map[string]string{domain.LabelStagingConfig: cfg})
}

func (e *env) poolContainersPerAgent(cfg string) map[string]int {
	e.t.Helper()
	per := map[string]int{}
	for _, c := range e.poolContainers(cfg) {
		per[c.Labels[domain.LabelAgent]]++
	}
	return per
}

// poolStaged lists the staged sessions of cfg, oldest first.
func (e *env) poolStaged(cfg string) []sessions.Session {
	e.t.Helper()
	var ids []string
	if err := e.db.SelectContext(e.ctx, &ids, `SELECT id FROM sessions WHERE staging_config_id = $1 AND status = 'staged'
		ORDER BY staged_at, id`, cfg); err != nil {
		e.t.Fatal(err)
	}
	out := make([]sessions.Session, 0, len(ids))
	for _, id := range ids {
		out = append(out, e.session(id))
	}
	return out
}

// poolConfigRow is a staging config's status as the API shows it.
type poolConfigRow struct {
	Status      string       `db:"status"`
	LastError   string       `db:"last_error"`
	LastErrorAt sql.NullTime `db:"last_error_at"`
}

func (e *env) poolConfig(cfg string) poolConfigRow {
	e.t.Helper()
	var c poolConfigRow
	if err := e.db.GetContext(e.ctx, &c, `SELECT status, last_error, last_error_at FROM staging_configs WHERE id = $1`, cfg); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// poolAttempt is a session a pool created, with when it failed.
type poolAttempt struct {
	CreatedAt time.Time    `db:"created_at"`
	FailedAt  sql.NullTime `db:"destroyed_at"`
}

// poolAttempts lists every session of cfg, oldest first: one per creation
// attempt.
func (e *env) poolAttempts(cfg string) []poolAttempt {
	e.t.Helper()
	var out []poolAttempt
	if err := e.db.SelectContext(e.ctx, &out, `SELECT created_at, destroyed_at FROM sessions WHERE staging_config_id = $1
		ORDER BY created_at, id`, cfg); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// poolRetries counts the rounds of attempts: sessions created within
// 100 ms of each other (one pass) are one round.
func poolRetries(attempts []poolAttempt) int {
	rounds := 0
	for i, a := range attempts {
		if i == 0 || a.CreatedAt.Sub(attempts[i-1].CreatedAt) >= 100*time.Millisecond {
			rounds++
		}
	}
	return rounds
}

// poolExpireStaged does what the expiry service's sweeper does when its
// clock reads now (services/expiry/service: staged_expiry.go, the query
// selectExpiredStagedSQL): every staged session past its expiration moves
// to destroying, with greenroom.session.expired (staged_expired), in one
// transaction, skipping rows another transaction holds. The expiry module
// is not imported: it is another service, and this test is about what the
// provisioner does with the event.
func (e *env) poolExpireStaged(now time.Time) []string {
	e.t.Helper()
	var expired []string
	err := db.InTx(e.ctx, e.db, func(tx *sqlx.Tx) error {
		var due []struct {
			ID              string         `db:"id"`
			StagingConfigID sql.NullString `db:"staging_config_id"`
		}
		if err := tx.SelectContext(e.ctx, &due, `SELECT s.id, s.staging_config_id
			FROM sessions s LEFT JOIN staging_configs sc ON sc.id = s.staging_config_id
			WHERE s.status = 'staged'
			  AND LEAST(s.expires_at, s.staged_at + make_interval(secs => sc.expiration_hours * 3600)) <= $1
			FOR UPDATE OF s SKIP LOCKED`, now); err != nil {
			return err
		}
		for _, d := range due {
			if _, err := sessions.Transition(e.ctx, tx, d.ID, sessions.Staged, sessions.Destroying, sessions.Change{}); err != nil {
				return err
			}
			if _, err := outbox.Emit(e.ctx, tx, "greenroom/expiry", events.TypeSessionExpired, events.TypeSessionExpired,
				events.SessionExpired{SessionID: d.ID, StagingConfigID: d.StagingConfigID.String, Reason: events.ExpiredStaged}, ""); err != nil {
				return err
			}
			expired = append(expired, d.ID)
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("expiring staged sessions: %v", err)
	}
	return expired
}

// poolReplica starts a second, complete provisioner on the test's database
// and bus, as another replica of the service; it stops with the test.
func (e *env) poolReplica(cfg service.Config) *service.Service {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	level := zapcore.WarnLevel
	log := zaptest.NewLogger(e.t, zaptest.Level(level)).Named("replica-2")
	deps, err := app.Connect(ctx, "provisioner", settings.Common{
		DatabaseURL: e.dbURL, NatsURL: e.deps.NC.ConnectedUrl(), StreamReplicas: 1, ShutdownTimeout: 30 * time.Second,
	}, log, 10*time.Second)
	if err != nil {
		e.t.Fatalf("connecting the second replica: %v", err)
	}
	e.t.Cleanup(deps.Close)
	cfg.Provision.ExtraLabels = map[string]string{testLabel: e.label}
	cfg.Provision.ReadinessTimeout = max(cfg.Provision.ReadinessTimeout, 20*time.Second)
	svc, err := service.New(deps, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cancel()
		svc.Stop()
		if err := svc.Err(); err != nil {
			e.t.Errorf("second replica stopped with: %v", err)
		}
	})
	return svc
}
