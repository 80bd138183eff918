package staging_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

type pool struct {
	conn   *sqlx.DB
	config string
}

func newPool(t *testing.T, desired int) pool {
	t.Helper()
	conn, _ := dbtest.New(t)
	zone, ws, cfg := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO zones (id, name) VALUES ($1, 'z')`, []any{zone}},
		// Room for 16 sessions of the workspace (1 core, 512 MB).
		{`INSERT INTO agents (id, name, zone_id, docker_endpoint, cores, memory_mb) VALUES ($1, 'a1', $2, 'unix:///x', 16, 8192)`, []any{uuid.NewString(), zone}},
		{`INSERT INTO workspaces (id, name, image) VALUES ($1, 'w', 'img')`, []any{ws}},
		// Audio only: every allow_* is written, whatever the defaults.
		{`INSERT INTO staging_configs (id, zone_id, workspace_id, desired_sessions, allow_audio, allow_clipboard_down,
			allow_clipboard_up, allow_downloads, allow_microphone, allow_uploads, allow_gamepad)
			VALUES ($1, $2, $3, $4, true, false, false, false, false, false, false)`, []any{cfg, zone, ws, desired}},
	} {
		if _, err := conn.Exec(q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	return pool{conn: conn, config: cfg}
}

func (p pool) count(t *testing.T) int {
	t.Helper()
	var n int
	if err := p.conn.Get(&n, `SELECT count(*) FROM sessions WHERE staging_config_id = $1`, p.config); err != nil {
		t.Fatal(err)
	}
	return n
}

func (p pool) outbox(t *testing.T, subject string) int {
	t.Helper()
	var n int
	if err := p.conn.Get(&n, `SELECT count(*) FROM outbox WHERE subject = $1`, subject); err != nil {
		t.Fatal(err)
	}
	return n
}

func newReconciler(p pool, cfg staging.ReconcilerConfig) *staging.Reconciler {
	return staging.NewReconciler(cfg, postgres.New(p.conn, "greenroom/provisioner"), zap.NewNop(), nil)
}

// TestConcurrentReconcilersNeverExceedDesired: two replicas reconciling the
// same pool at once, again and again, request exactly desired sessions.
func TestConcurrentReconcilersNeverExceedDesired(t *testing.T) {
	t.Parallel()
	p := newPool(t, 3)
	cfg := staging.ReconcilerConfig{RefillConcurrency: 100}
	replicas := []*staging.Reconciler{newReconciler(p, cfg), newReconciler(p, cfg)}
	var wg sync.WaitGroup
	for _, r := range replicas {
		for range 5 {
			wg.Go(func() {
				if _, err := r.RunOnce(context.Background()); err != nil {
					t.Errorf("RunOnce: %v", err)
				}
			})
		}
	}
	wg.Wait()
	if n := p.count(t); n != 3 {
		t.Errorf("%d sessions requested, want 3", n)
	}
	if n := p.outbox(t, "greenroom.provision.requested"); n != 3 {
		t.Errorf("%d provision.requested events, want 3", n)
	}
	var perms []byte
	if err := p.conn.Get(&perms, `SELECT permissions FROM sessions WHERE staging_config_id = $1 LIMIT 1`, p.config); err != nil {
		t.Fatal(err)
	}
	var s sessions.Session
	s.PermissionsJSON = perms
	if got, err := s.Permissions(); err != nil || !got.AllowAudio || got.AllowGamepad {
		t.Errorf("staged session permissions = %+v (err %v), want the config's", got, err)
	}
}

// TestRefillsAreBoundedOverEveryPool: the refill budget holds across
// pools, so a burst of refills cannot take every provisioner slot.
func TestRefillsAreBoundedOverEveryPool(t *testing.T) {
	t.Parallel()
	p := newPool(t, 5)
	r := newReconciler(p, staging.ReconcilerConfig{RefillConcurrency: 2})
	res, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 2 || res.HeldBack != 1 {
		t.Errorf("first pass %+v, want 2 created and the pool held back", res)
	}
	res, err = r.RunOnce(context.Background())
	if err != nil || res.Created != 0 {
		t.Errorf("second pass %+v (err %v): created while 2 refills are in flight", res, err)
	}
	// One refill finishes: one more may start.
	if _, err := p.conn.Exec(`UPDATE sessions SET status = 'staged', staged_at = now()
		WHERE id = (SELECT id FROM sessions WHERE staging_config_id = $1 LIMIT 1)`, p.config); err != nil {
		t.Fatal(err)
	}
	if res, err = r.RunOnce(context.Background()); err != nil || res.Created != 1 {
		t.Errorf("third pass %+v (err %v), want 1 created", res, err)
	}
}

func TestDeletedConfigShrinksToNothing(t *testing.T) {
	t.Parallel()
	p := newPool(t, 2)
	r := newReconciler(p, staging.ReconcilerConfig{})
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.conn.Exec(`UPDATE sessions SET status = 'staged', staged_at = now() WHERE staging_config_id = $1`, p.config); err != nil {
		t.Fatal(err)
	}
	if _, err := p.conn.Exec(`UPDATE staging_configs SET deleted_at = now() WHERE id = $1`, p.config); err != nil {
		t.Fatal(err)
	}
	res, err := r.RunOnce(context.Background())
	if err != nil || res.Destroyed != 2 || res.Created != 0 {
		t.Fatalf("pass over a deleted config = %+v (err %v), want 2 destroyed", res, err)
	}
	if n := p.outbox(t, "greenroom.session.destroy"); n != 2 {
		t.Errorf("%d session.destroy events, want 2", n)
	}
	// Nothing staged is left: the config is no longer visited.
	if res, err := r.RunOnce(context.Background()); err != nil || res.Configs != 0 {
		t.Errorf("next pass %+v (err %v), want the deleted config skipped", res, err)
	}
}

func TestDisabledWorkspaceIsAShortfallWithoutCreating(t *testing.T) {
	t.Parallel()
	p := newPool(t, 2)
	if _, err := p.conn.Exec(`UPDATE workspaces SET enabled = false`); err != nil {
		t.Fatal(err)
	}
	r := newReconciler(p, staging.ReconcilerConfig{})
	for range 3 {
		if _, err := r.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var status, lastError string
	if err := p.conn.QueryRow(`SELECT status, last_error FROM staging_configs WHERE id = $1`, p.config).Scan(&status, &lastError); err != nil {
		t.Fatal(err)
	}
	if status != "shortfall" || lastError != "workspace_disabled: workspace w is disabled" {
		t.Errorf("status %q last_error %q", status, lastError)
	}
	if n := p.count(t); n != 0 {
		t.Errorf("%d sessions created for a disabled workspace", n)
	}
	if n := p.outbox(t, "greenroom.staging.shortfall"); n != 1 {
		t.Errorf("%d staging.shortfall events over 3 passes, want 1 (announced once)", n)
	}
}

// TestStartReconcilesAtOnceWhenTriggered uses TestSignals: a trigger is
// acted on without waiting for the tick.
func TestStartReconcilesAtOnceWhenTriggered(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1)
	r := newReconciler(p, staging.ReconcilerConfig{Interval: time.Hour})
	r.TestSignals.Init()
	apptest.Start(t, r)

	if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 1 {
		t.Errorf("first pass %+v, want 1 created", res)
	}
	if _, err := p.conn.Exec(`UPDATE staging_configs SET desired_sessions = 2 WHERE id = $1`, p.config); err != nil {
		t.Fatal(err)
	}
	r.Trigger(p.config)
	if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 1 {
		t.Errorf("triggered pass %+v, want 1 created", res)
	}
}

// exec runs a statement of the test's setup.
func (p pool) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := p.conn.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// statuses returns the status of each session of the pool, by id.
func (p pool) statuses(t *testing.T) map[string]string {
	t.Helper()
	var rows []struct {
		ID     string `db:"id"`
		Status string `db:"status"`
	}
	if err := p.conn.Select(&rows, `SELECT id, status FROM sessions WHERE staging_config_id = $1`, p.config); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.ID] = r.Status
	}
	return out
}

func (p pool) configStatus(t *testing.T) (status, lastError string) {
	t.Helper()
	if err := p.conn.QueryRow(`SELECT status, last_error FROM staging_configs WHERE id = $1`, p.config).Scan(&status, &lastError); err != nil {
		t.Fatal(err)
	}
	return status, lastError
}

// TestShrinkDestroysProvisioningBeforeStagedNeverAssigning: lowering
// desired takes sessions still being made first (newest first), then
// staged ones, and never the one being claimed.
func TestShrinkDestroysProvisioningBeforeStagedNeverAssigning(t *testing.T) {
	t.Parallel()
	p := newPool(t, 5)
	r := newReconciler(p, staging.ReconcilerConfig{RefillConcurrency: 100})
	if res, err := r.RunOnce(context.Background()); err != nil || res.Created != 5 {
		t.Fatalf("fill: %+v, %v", res, err)
	}
	var ids []string
	if err := p.conn.Select(&ids, `SELECT id FROM sessions WHERE staging_config_id = $1 ORDER BY id`, p.config); err != nil {
		t.Fatal(err)
	}
	// ids are UUIDv7, so in creation order: two staged, one being claimed,
	// two still provisioning.
	for i, id := range ids[:3] {
		p.exec(t, `UPDATE sessions SET status = 'staged', staged_at = now() + $2 * interval '1 second' WHERE id = $1`, id, i)
	}
	p.exec(t, `UPDATE sessions SET status = 'assigning', assigned_at = now() WHERE id = $1`, ids[2])
	p.exec(t, `UPDATE staging_configs SET desired_sessions = 1 WHERE id = $1`, p.config)

	res, err := r.RunOnce(context.Background())
	if err != nil || res.Destroyed != 3 || res.Created != 0 {
		t.Fatalf("shrink pass %+v (err %v), want 3 destroyed", res, err)
	}
	got := p.statuses(t)
	want := map[string]string{ids[0]: "staged", ids[1]: "destroying", ids[2]: "assigning", ids[3]: "destroying", ids[4]: "destroying"}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("session %d is %s, want %s", slices.Index(ids, id), got[id], st)
		}
	}
	var order []string
	if err := p.conn.Select(&order, `SELECT payload->'data'->>'session_id' FROM outbox
		WHERE subject = 'greenroom.session.destroy' ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	if want := []string{ids[4], ids[3], ids[1]}; !slices.Equal(order, want) {
		t.Errorf("session.destroy for %v, want the newest provisioning, then the other, then the newest staged: %v", order, want)
	}
	if st, _ := p.configStatus(t); st != "ok" {
		t.Errorf("status %s after the shrink, want ok", st)
	}
}

// TestStaleSessionsAreReplaced: after the config's permissions change, the
// staged sessions started with the old ones (never claimed again) are
// destroyed and replaced.
func TestStaleSessionsAreReplaced(t *testing.T) {
	t.Parallel()
	p := newPool(t, 2)
	r := newReconciler(p, staging.ReconcilerConfig{RefillConcurrency: 100})
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.exec(t, `UPDATE sessions SET status = 'staged', staged_at = now() WHERE staging_config_id = $1`, p.config)
	old := p.statuses(t)
	p.exec(t, `UPDATE staging_configs SET allow_gamepad = true WHERE id = $1`, p.config)

	res, err := r.RunOnce(context.Background())
	if err != nil || res.Destroyed != 2 || res.Created != 2 {
		t.Fatalf("pass after a permission change %+v (err %v), want 2 destroyed and 2 created", res, err)
	}
	for id, st := range p.statuses(t) {
		if _, wasThere := old[id]; wasThere && st != "destroying" {
			t.Errorf("stale session is %s, want destroying", st)
		}
	}
	var fresh int
	if err := p.conn.Get(&fresh, `SELECT count(*) FROM sessions WHERE staging_config_id = $1 AND status = 'provisioning'
		AND (permissions->>'allow_gamepad')::boolean`, p.config); err != nil || fresh != 2 {
		t.Errorf("%d replacements with the new permissions (err %v), want 2", fresh, err)
	}
	// Nothing more to do: the replacements count, the stale ones are going.
	if res, err := r.RunOnce(context.Background()); err != nil || res.Created+res.Destroyed != 0 {
		t.Errorf("next pass %+v (err %v), want nothing done", res, err)
	}
}

// TestNoRoomIsAShortfallWithoutRows: a zone whose agents cannot host the
// workspace gets no session rows that could only fail; the config says
// why, announced once over many passes; capacity added fills it.
func TestNoRoomIsAShortfallWithoutRows(t *testing.T) {
	t.Parallel()
	p := newPool(t, 2)
	p.exec(t, `UPDATE agents SET cores = 0.5`)
	r := newReconciler(p, staging.ReconcilerConfig{})
	for range 3 {
		res, err := r.RunOnce(context.Background())
		if err != nil || res.Created != 0 || res.Shortfalls != 1 {
			t.Fatalf("pass %+v (err %v), want nothing created and a shortfall", res, err)
		}
	}
	if n := p.count(t); n != 0 {
		t.Errorf("%d sessions inserted with no room for them", n)
	}
	st, lastError := p.configStatus(t)
	if want := "no_capacity: z: agent a1 has 0.5 free cores, needs 1"; st != "shortfall" || lastError != want {
		t.Errorf("status %q last_error %q, want shortfall and %q", st, lastError, want)
	}
	if n := p.outbox(t, "greenroom.staging.shortfall"); n != 1 {
		t.Errorf("%d staging.shortfall events over 3 passes, want 1", n)
	}

	p.exec(t, `UPDATE agents SET cores = 1.5`)
	if res, err := r.RunOnce(context.Background()); err != nil || res.Created != 1 {
		t.Fatalf("pass with room for one %+v (err %v), want 1 created", res, err)
	}
	if _, lastError := p.configStatus(t); !strings.HasPrefix(lastError, "no_capacity: z: room for 1 of the 2 sessions missing") {
		t.Errorf("last_error %q", lastError)
	}
	if n := p.outbox(t, "greenroom.staging.shortfall"); n != 1 {
		t.Errorf("%d staging.shortfall events, want still 1: the cause did not change", n)
	}
	p.exec(t, `UPDATE agents SET cores = 4`)
	if res, err := r.RunOnce(context.Background()); err != nil || res.Created != 1 || res.Shortfalls != 0 {
		t.Fatalf("pass with room %+v (err %v), want 1 created and no shortfall", res, err)
	}
	if st, _ := p.configStatus(t); st != "filling" {
		t.Errorf("status %q once there is room, want filling", st)
	}
}

// TestConcurrentPoolsNeverCountTheSameRoomTwice: two pools of one zone
// reconciled at once by two replicas insert no more sessions than the
// zone has room for.
func TestConcurrentPoolsNeverCountTheSameRoomTwice(t *testing.T) {
	t.Parallel()
	p := newPool(t, 6)
	p.exec(t, `UPDATE agents SET cores = 5`)
	other := uuid.NewString()
	p.exec(t, `INSERT INTO workspaces (id, name, image) VALUES ($1, 'w2', 'img')`, other)
	p.exec(t, `INSERT INTO staging_configs (id, zone_id, workspace_id, desired_sessions)
		SELECT $1, zone_id, $2, 6 FROM staging_configs WHERE id = $3`, uuid.NewString(), other, p.config)
	cfg := staging.ReconcilerConfig{RefillConcurrency: 100}
	var wg sync.WaitGroup
	for _, r := range []*staging.Reconciler{newReconciler(p, cfg), newReconciler(p, cfg)} {
		wg.Go(func() {
			if _, err := r.RunOnce(context.Background()); err != nil {
				t.Errorf("RunOnce: %v", err)
			}
		})
	}
	wg.Wait()
	var n int
	if err := p.conn.Get(&n, `SELECT count(*) FROM sessions`); err != nil || n != 5 {
		t.Errorf("%d sessions inserted (err %v) in a zone with room for 5", n, err)
	}
}

// TestConfigChangeRetriesAPermanentFailureAtOnce: a pool waiting out the
// long backoff of a missing image tries again as soon as a configuration
// change arrives, and not before.
func TestConfigChangeRetriesAPermanentFailureAtOnce(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1)
	var ws, zone string
	if err := p.conn.QueryRow(`SELECT workspace_id, zone_id FROM staging_configs WHERE id = $1`, p.config).Scan(&ws, &zone); err != nil {
		t.Fatal(err)
	}
	p.exec(t, `INSERT INTO sessions (id, workspace_id, zone_id, staging_config_id, origin, status, failure_reason, destroyed_at)
		VALUES ($1, $2, $3, $4, 'staged', 'failed', $5, now())`, uuid.NewString(), ws, zone, p.config,
		"provisioning_failed: "+domain.ImageMissingDetail("img", "a1"))
	r := newReconciler(p, staging.ReconcilerConfig{Interval: time.Hour})
	r.TestSignals.Init()
	apptest.Start(t, r)

	if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 0 || res.Shortfalls != 1 {
		t.Errorf("first pass %+v, want nothing created and a shortfall", res)
	}
	st, lastError := p.configStatus(t)
	if st != "shortfall" || !strings.HasPrefix(lastError, "image_missing: image img is not on agent a1") {
		t.Errorf("status %q last_error %q", st, lastError)
	}
	var permanent bool
	if err := p.conn.Get(&permanent, `SELECT (payload->'data'->>'permanent')::boolean FROM outbox WHERE subject = 'greenroom.staging.shortfall'`); err != nil || !permanent {
		t.Errorf("staging.shortfall permanent = %v (err %v), want true", permanent, err)
	}
	r.Trigger(p.config)
	if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 0 {
		t.Errorf("a trigger retried a permanent failure at once: %+v", res)
	}
	r.ConfigChanged("")
	if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 1 {
		t.Errorf("pass after a configuration change %+v, want 1 created", res)
	}
}

// TestContainersThatDieSoonAfterStagingBackOffNotLoop: a workspace whose
// containers answer their probe and then crash is a failing pool, backed
// off and reported as a shortfall, not re-created forever.
func TestContainersThatDieSoonAfterStagingBackOffNotLoop(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1)
	var ws, zone string
	if err := p.conn.QueryRow(`SELECT workspace_id, zone_id FROM staging_configs WHERE id = $1`, p.config).Scan(&ws, &zone); err != nil {
		t.Fatal(err)
	}
	// Three sessions, each staged and dead seconds later.
	for i := range 3 {
		p.exec(t, `INSERT INTO sessions (id, workspace_id, zone_id, staging_config_id, origin, status, failure_reason,
				created_at, staged_at, destroyed_at)
			VALUES ($1, $2, $3, $4, 'staged', 'failed', 'container_gone: exited (code 137)',
				now() - make_interval(secs => $5 + 3), now() - make_interval(secs => $5 + 2), now() - make_interval(secs => $5))`,
			uuid.NewString(), ws, zone, p.config, 10*(2-i))
	}
	r := newReconciler(p, staging.ReconcilerConfig{Interval: time.Hour})
	res, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 0 {
		t.Fatalf("a pool whose containers die young was refilled at once: %+v", res)
	}
	st, lastError := p.configStatus(t)
	if st != "shortfall" || !strings.Contains(lastError, "die within 2m0s of starting: exited (code 137)") {
		t.Fatalf("status %q last_error %q", st, lastError)
	}

	// A container that stays up after being staged is a healthy one: the
	// failures before it no longer hold the pool back. (It is of the
	// pool's current revision, so it counts towards the pool.)
	p.exec(t, `INSERT INTO sessions (id, workspace_id, zone_id, staging_config_id, origin, status, created_at, staged_at, permissions, revision)
		VALUES ($1, $2, $3, $4, 'staged', 'staged', now() - interval '2 seconds', now() - interval '1 second',
			'{"allow_audio":true,"allow_clipboard_down":false,"allow_clipboard_up":false,"allow_downloads":false,"allow_microphone":false,"allow_uploads":false,"allow_gamepad":false}', $5)`,
		uuid.NewString(), ws, zone, p.config, p.revision(t))
	p.exec(t, `UPDATE staging_configs SET desired_sessions = 2 WHERE id = $1`, p.config)
	res, err = r.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 1 {
		t.Fatalf("after a healthy session the pool must refill: %+v", res)
	}
}

// TestReEnabledWorkspaceRefillsWithoutWaitingOutItsBackoff: failures
// recorded while the workspace was disabled stop counting once it is
// enabled again, on whichever replica and pass sees it first.
func TestReEnabledWorkspaceRefillsWithoutWaitingOutItsBackoff(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1)
	var ws, zone string
	if err := p.conn.QueryRow(`SELECT workspace_id, zone_id FROM staging_configs WHERE id = $1`, p.config).Scan(&ws, &zone); err != nil {
		t.Fatal(err)
	}
	p.exec(t, `INSERT INTO sessions (id, workspace_id, zone_id, staging_config_id, origin, status, failure_reason, destroyed_at)
		VALUES ($1, $2, $3, $4, 'staged', 'failed', 'workspace_disabled: workspace w is disabled', now())`,
		uuid.NewString(), ws, zone, p.config)
	res, err := newReconciler(p, staging.ReconcilerConfig{Interval: time.Hour}).RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 1 {
		t.Fatalf("the workspace is enabled: the pool must refill at once, got %+v", res)
	}
}

// TestClaimedPoolIsRefilledOnceItsClaimsPauseNotOnEachClaim: a claimed
// pool waits for its claims to pause (domain.ClaimBurst) whatever else
// triggers it, but a change of its configuration reconciles it at once;
// once the pause is over it is refilled without another trigger.
func TestClaimedPoolIsRefilledOnceItsClaimsPauseNotOnEachClaim(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, quiet time.Duration) (pool, *staging.Reconciler) {
		p := newPool(t, 1)
		r := newReconciler(p, staging.ReconcilerConfig{Interval: time.Hour, RefillQuiet: quiet, RefillDelayMax: quiet})
		r.TestSignals.Init()
		apptest.Start(t, r)
		if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 1 {
			t.Fatalf("first pass %+v, want 1 created", res)
		}
		// The pool lacks one, as after a claim.
		p.exec(t, `UPDATE staging_configs SET desired_sessions = 2 WHERE id = $1`, p.config)
		return p, r
	}

	t.Run("passed over until its claims pause", func(t *testing.T) {
		p, r := run(t, time.Hour)
		r.Claimed(p.config)
		for _, trigger := range []func(){func() {}, func() { r.Trigger(p.config) }, func() { r.Trigger("") }} {
			trigger()
			if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Configs != 0 || res.Created != 0 {
				t.Fatalf("pass %+v visited the claimed pool before its claims paused", res)
			}
		}
		if n := p.count(t); n != 1 {
			t.Fatalf("%d sessions, want the 1 of before the claim", n)
		}
		r.ConfigChanged(p.config)
		if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 1 {
			t.Fatalf("a configuration change must reconcile the claimed pool at once: %+v", res)
		}
	})
	t.Run("refilled once they paused", func(t *testing.T) {
		p, r := run(t, time.Millisecond)
		r.Claimed(p.config)
		deadline := time.Now().Add(10 * time.Second)
		for p.count(t) != 2 {
			r.TestSignals.PassDone.WaitOrTimeout(t, time.Until(deadline))
		}
	})
}
