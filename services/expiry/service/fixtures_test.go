package service_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
)

// clock is the sweeper's injectable clock: tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// world is a migrated database holding one zone, workspace, user and
// staging config, so that tests can create sessions in any status.
type world struct {
	t               *testing.T
	db              *sqlx.DB
	url             string
	zoneID          string
	workspaceID     string
	userID          string
	stagingConfigID string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	conn, url := dbtest.New(t)
	w := &world{
		t: t, db: conn, url: url,
		zoneID: uuid.NewString(), workspaceID: uuid.NewString(),
		userID: uuid.NewString(), stagingConfigID: uuid.NewString(),
	}
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO zones (id, name, allow_origin_domain, upstream_auth_address) VALUES ($1, 'zone-a', 'greenroom.localhost', 'greenroom.localhost')`, []any{w.zoneID}},
		{`INSERT INTO workspaces (id, name, image) VALUES ($1, 'demo', 'greenroom/demo-workspace:latest')`, []any{w.workspaceID}},
		{`INSERT INTO users (id, username) VALUES ($1, 'alice')`, []any{w.userID}},
		{`INSERT INTO staging_configs (id, zone_id, workspace_id, desired_sessions, expiration_hours) VALUES ($1, $2, $3, 3, 1)`,
			[]any{w.stagingConfigID, w.zoneID, w.workspaceID}},
	} {
		if _, err := conn.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("fixture %q: %v", q.sql, err)
		}
	}
	return w
}

// sweeper returns a sweeper over w's database reading the given clock.
func (w *world) sweeper(c *clock, cfg app.SweeperConfig) *app.Sweeper {
	w.t.Helper()
	cfg.Now = c.Now
	log := zaptest.NewLogger(w.t)
	s, err := app.NewSweeper(cfg, postgres.NewSessionTimers(w.db, log), log)
	if err != nil {
		w.t.Fatalf("NewSweeper: %v", err)
	}
	return s
}

// onDemand inserts an on-demand session of alice for requestID, in
// provisioning.
func (w *world) onDemand(requestID string) sessions.Session {
	w.t.Helper()
	s, err := sessions.Insert(context.Background(), w.db, sessions.New{
		ID: uuid.NewString(), RequestID: requestID, WorkspaceID: w.workspaceID, ZoneID: w.zoneID,
		UserID: w.userID, Origin: sessions.OriginOnDemand, Cores: 0.25, MemoryMB: 128,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// provisioningStaged inserts a session the provisioner is staging for the
// staging config, in provisioning.
func (w *world) provisioningStaged() sessions.Session {
	w.t.Helper()
	s, err := sessions.Insert(context.Background(), w.db, sessions.New{
		ID: uuid.NewString(), WorkspaceID: w.workspaceID, ZoneID: w.zoneID,
		StagingConfigID: w.stagingConfigID, Origin: sessions.OriginStaged, Cores: 0.25, MemoryMB: 128,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// staged inserts a staged session whose expires_at is set as the
// provisioner sets it (nil leaves it NULL).
func (w *world) staged(expiresAt *time.Time) sessions.Session {
	w.t.Helper()
	s := w.provisioningStaged()
	s, err := sessions.Transition(context.Background(), w.db, s.ID, sessions.Provisioning, sessions.Staged,
		sessions.Change{ContainerID: sessions.Ptr("c-" + s.ID[:8]), ExpiresAt: expiresAt})
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// claimed stages a session and claims it for alice under requestID, as the
// assigner does: it is in assigning, with assigned_at set. The claim takes
// the oldest staged session, so call it while no other session is staged.
func (w *world) claimed(requestID string) sessions.Session {
	w.t.Helper()
	s := w.staged(nil)
	c, err := sessions.ClaimStaged(context.Background(), w.db, w.stagingConfigID, w.userID, requestID, events.Permissions{})
	if err != nil {
		w.t.Fatal(err)
	}
	if c.ID != s.ID {
		w.t.Fatalf("claimed %s, want the session just staged %s", c.ID, s.ID)
	}
	return c
}

// destroying stages a session and moves it to destroying, as a pool shrink
// or an expiry does; its updated_at is when it entered destroying.
func (w *world) destroying() sessions.Session {
	w.t.Helper()
	return w.move(w.staged(nil).ID, sessions.Staged, sessions.Destroying)
}

// move walks session id through the given statuses.
func (w *world) move(id string, path ...sessions.Status) sessions.Session {
	w.t.Helper()
	var s sessions.Session
	for i := 0; i+1 < len(path); i++ {
		var err error
		if s, err = sessions.Transition(context.Background(), w.db, id, path[i], path[i+1], sessions.Change{}); err != nil {
			w.t.Fatal(err)
		}
	}
	return s
}

func (w *world) status(id string) sessions.Session {
	w.t.Helper()
	s, err := sessions.Get(context.Background(), w.db, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// outboxEvent is an event waiting in the outbox for the relay.
type outboxEvent struct {
	Subject   string
	RequestID string // the Greenroom-Request-Id header
	Event     events.Event
	Raw       []byte
}

// outbox returns the outbox's events, oldest first, after checking each
// against its JSON Schema.
func (w *world) outbox(v *events.Validator) []outboxEvent {
	w.t.Helper()
	var rows []struct {
		Subject string `db:"subject"`
		Payload []byte `db:"payload"`
		Headers []byte `db:"headers"`
	}
	if err := w.db.Select(&rows, `SELECT subject, payload, headers FROM outbox ORDER BY seq`); err != nil {
		w.t.Fatal(err)
	}
	out := make([]outboxEvent, 0, len(rows))
	for _, r := range rows {
		if err := v.Validate(r.Payload); err != nil {
			w.t.Errorf("outbox event on %s does not match its schema: %v", r.Subject, err)
		}
		ev, err := events.Decode(r.Payload)
		if err != nil {
			w.t.Fatalf("decoding outbox event: %v", err)
		}
		var hdr map[string]string
		if err := json.Unmarshal(r.Headers, &hdr); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, outboxEvent{Subject: r.Subject, RequestID: hdr[events.HeaderRequestID], Event: ev, Raw: r.Payload})
	}
	return out
}

func decode[T any](t *testing.T, ev events.Event) T {
	t.Helper()
	var v T
	if err := ev.DecodeData(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func validator(t *testing.T) *events.Validator {
	t.Helper()
	v, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustRunOnce(t *testing.T, s *app.Sweeper) app.SweepResult {
	t.Helper()
	res, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return res
}

// raceSweepers starts replicas sweepers on clock c at the same instant,
// each running one pass, and returns them with what each did.
func (w *world) raceSweepers(c *clock, replicas int, cfg app.SweeperConfig) ([]*app.Sweeper, []app.SweepResult) {
	w.t.Helper()
	sweepers := make([]*app.Sweeper, replicas)
	for i := range sweepers {
		sweepers[i] = w.sweeper(c, cfg)
	}
	results := make([]app.SweepResult, replicas)
	errs := make([]error, replicas)
	var ready, wg sync.WaitGroup
	ready.Add(replicas)
	start := make(chan struct{})
	for i, sw := range sweepers {
		wg.Go(func() {
			ready.Done()
			<-start
			results[i], errs[i] = sw.RunOnce(context.Background())
		})
	}
	ready.Wait()
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			w.t.Fatalf("sweeper %d: %v", i, err)
		}
	}
	return sweepers, results
}
