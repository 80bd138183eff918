package staging_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
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
		{`INSERT INTO workspaces (id, name, image) VALUES ($1, 'w', 'img')`, []any{ws}},
		{`INSERT INTO staging_configs (id, zone_id, workspace_id, desired_sessions, allow_audio) VALUES ($1, $2, $3, $4, true)`, []any{cfg, zone, ws, desired}},
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()

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
