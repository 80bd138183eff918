package sessions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

func TestTransitionsFollowTheLifecycle(t *testing.T) {
	legal := [][2]sessions.Status{
		{sessions.Provisioning, sessions.Staged}, {sessions.Provisioning, sessions.Running},
		{sessions.Staged, sessions.Assigning}, {sessions.Assigning, sessions.Running},
		{sessions.Running, sessions.Destroying}, {sessions.Destroying, sessions.Destroyed},
		{sessions.Provisioning, sessions.Failed}, {sessions.Assigning, sessions.Failed},
	}
	for _, p := range legal {
		if !sessions.CanTransition(p[0], p[1]) {
			t.Errorf("%s → %s must be allowed", p[0], p[1])
		}
	}
	illegal := [][2]sessions.Status{
		{sessions.Staged, sessions.Running}, {sessions.Running, sessions.Staged},
		{sessions.Destroyed, sessions.Provisioning}, {sessions.Failed, sessions.Running},
		{sessions.Provisioning, sessions.Assigning}, {sessions.Destroying, sessions.Running},
	}
	for _, p := range illegal {
		if sessions.CanTransition(p[0], p[1]) {
			t.Errorf("%s → %s must be refused", p[0], p[1])
		}
	}
}

// fixture inserts a zone, a workspace and a staging config.
func fixture(t *testing.T, conn *sqlx.DB) (zoneID, workspaceID, configID string) {
	t.Helper()
	zoneID, workspaceID, configID = uuid.NewString(), uuid.NewString(), uuid.NewString()
	conn.MustExec(`INSERT INTO zones (id, name) VALUES ($1, $2)`, zoneID, "z-"+zoneID[:8])
	conn.MustExec(`INSERT INTO workspaces (id, name, image) VALUES ($1, $2, 'img')`, workspaceID, "w-"+workspaceID[:8])
	conn.MustExec(`INSERT INTO staging_configs (id, zone_id, workspace_id, desired_sessions) VALUES ($1, $2, $3, 1)`, configID, zoneID, workspaceID)
	return
}

func insertStaged(t *testing.T, conn *sqlx.DB, zoneID, workspaceID, configID string) string {
	t.Helper()
	ctx := context.Background()
	s, err := sessions.Insert(ctx, conn, sessions.New{ID: uuid.NewString(), WorkspaceID: workspaceID, ZoneID: zoneID,
		StagingConfigID: configID, Origin: sessions.OriginStaged})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.Transition(ctx, conn, s.ID, sessions.Provisioning, sessions.Staged, sessions.Change{}); err != nil {
		t.Fatal(err)
	}
	return s.ID
}

func TestIllegalTransitionIsAnErrorNotASilentUpdate(t *testing.T) {
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	z, w, c := fixture(t, conn)
	id := insertStaged(t, conn, z, w, c)
	if _, err := sessions.Transition(ctx, conn, id, sessions.Staged, sessions.Running, sessions.Change{}); !errors.Is(err, sessions.ErrIllegalTransition) {
		t.Fatalf("staged → running: got %v, want ErrIllegalTransition", err)
	}
	if _, err := sessions.Transition(ctx, conn, id, sessions.Provisioning, sessions.Running, sessions.Change{}); !errors.Is(err, sessions.ErrStale) {
		t.Fatalf("transition from a status the row no longer has: got %v, want ErrStale", err)
	}
	s, err := sessions.Get(ctx, conn, id)
	if err != nil || s.Status != sessions.Staged || !s.StagedAt.Valid {
		t.Fatalf("session must still be staged with staged_at: %+v %v", s, err)
	}
}

// TestConcurrentClaimsNeverShareASession: N claims race for fewer staged
// sessions; every staged session goes to exactly one claimer.
func TestConcurrentClaimsNeverShareASession(t *testing.T) {
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	z, w, c := fixture(t, conn)
	user := uuid.NewString()
	conn.MustExec(`INSERT INTO users (id, username) VALUES ($1, 'u')`, user)
	const staged, claimers = 5, 20
	for range staged {
		insertStaged(t, conn, z, w, c)
	}
	var (
		mu   sync.Mutex
		got  = map[string]int{}
		none int
		wg   sync.WaitGroup
	)
	for i := range claimers {
		wg.Go(func() {
			s, err := sessions.ClaimStaged(ctx, conn, c, user, fmt.Sprintf("req-%d", i), events.Permissions{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, sessions.ErrNoneStaged):
				none++
			case err != nil:
				t.Errorf("claim: %v", err)
			default:
				got[s.ID]++
				if s.Status != sessions.Assigning || !s.UserID.Valid || !s.AssignedAt.Valid {
					t.Errorf("claimed session not assigning to the user: %+v", s)
				}
			}
		})
	}
	wg.Wait()
	if len(got) != staged || none != claimers-staged {
		t.Fatalf("claimed %d distinct sessions and %d found none; want %d and %d", len(got), none, staged, claimers-staged)
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("session %s claimed %d times", id, n)
		}
	}
}

// TestClaimUsesThePartialIndexOfStagedRows runs EXPLAIN on the claim against
// thousands of sessions and fails unless the plan reads the partial index.
func TestClaimUsesThePartialIndexOfStagedRows(t *testing.T) {
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	z, w, c := fixture(t, conn)
	// Thousands of sessions, few of them staged: the shape of a real table.
	conn.MustExec(`INSERT INTO sessions (id, workspace_id, zone_id, staging_config_id, origin, status, created_at)
		SELECT gen_random_uuid(), $1, $2, CASE WHEN g % 2 = 0 THEN $3::uuid END,
			CASE WHEN g % 2 = 0 THEN 'staged' ELSE 'on_demand' END,
			(ARRAY['destroyed','failed','running','destroyed'])[1 + g % 4], now() - g * interval '1 second'
		FROM generate_series(1, 5000) g`, w, z, c)
	for range 20 {
		insertStaged(t, conn, z, w, c)
	}
	conn.MustExec(`ANALYZE sessions`)
	rows, err := conn.QueryxContext(ctx, "EXPLAIN "+sessions.ClaimStagedSQL, c, uuid.NewString(), "req", "{}", nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	text := strings.Join(plan, "\n")
	t.Logf("claim plan:\n%s", text)
	if !strings.Contains(text, "sessions_staged_claim_idx") {
		t.Fatalf("the claim does not use sessions_staged_claim_idx:\n%s", text)
	}
	if strings.Contains(text, "Seq Scan on sessions") {
		t.Fatalf("the claim scans the sessions table:\n%s", text)
	}
}

// TestClaimMatchesThePermissionsTheContainerStartedWith: after a staging
// config's permissions change, containers started under the old ones are
// not handed to users of the new ones.
func TestClaimMatchesThePermissionsTheContainerStartedWith(t *testing.T) {
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	z, w, c := fixture(t, conn)
	user := uuid.NewString()
	conn.MustExec(`INSERT INTO users (id, username) VALUES ($1, 'u')`, user)
	old := events.Permissions{AllowClipboardDown: true}
	s, err := sessions.Insert(ctx, conn, sessions.New{ID: uuid.NewString(), WorkspaceID: w, ZoneID: z,
		StagingConfigID: c, Origin: sessions.OriginStaged, Permissions: old})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.Transition(ctx, conn, s.ID, sessions.Provisioning, sessions.Staged, sessions.Change{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.ClaimStaged(ctx, conn, c, user, "req-new", events.Permissions{}); !errors.Is(err, sessions.ErrNoneStaged) {
		t.Fatalf("claim with other permissions: %v, want ErrNoneStaged", err)
	}
	got, err := sessions.ClaimStaged(ctx, conn, c, user, "req-old", old)
	if err != nil || got.ID != s.ID || got.ExpiresAt.Valid {
		t.Fatalf("claim with the container's permissions: %+v %v (expires_at must be cleared)", got, err)
	}
}

// TestClaimPassesOverSessionsOnADrainingAgent: a staged session on an
// agent the autoscaler drains is not handed to a user (who would keep the
// agent's machine until their session ends), even when it is the oldest.
func TestClaimPassesOverSessionsOnADrainingAgent(t *testing.T) {
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	z, w, c := fixture(t, conn)
	user := uuid.NewString()
	conn.MustExec(`INSERT INTO users (id, username) VALUES ($1, 'u')`, user)
	draining, active := uuid.NewString(), uuid.NewString()
	conn.MustExec(`INSERT INTO agents (id, name, zone_id, docker_endpoint, cores, memory_mb, lifecycle)
		VALUES ($1, 'draining', $3, 'tcp://10.0.0.1:2376', 2, 2048, 'draining'), ($2, 'active', $3, 'tcp://10.0.0.2:2376', 2, 2048, 'active')`,
		draining, active, z)
	onDraining := insertStaged(t, conn, z, w, c)
	onActive := insertStaged(t, conn, z, w, c)
	conn.MustExec(`UPDATE sessions SET agent_id = $2 WHERE id = $1`, onDraining, draining)
	conn.MustExec(`UPDATE sessions SET agent_id = $2 WHERE id = $1`, onActive, active)
	got, err := sessions.ClaimStaged(ctx, conn, c, user, "req-1", events.Permissions{})
	if err != nil || got.ID != onActive {
		t.Fatalf("claim: %s %v, want %s (the one on the active agent)", got.ID, err, onActive)
	}
	if _, err := sessions.ClaimStaged(ctx, conn, c, user, "req-2", events.Permissions{}); !errors.Is(err, sessions.ErrNoneStaged) {
		t.Fatalf("second claim: %v, want ErrNoneStaged (the one left is on the draining agent)", err)
	}
}

func TestAssignSecretNeverPrints(t *testing.T) {
	s := sessions.Session{ID: "s", AssignSecret: "hunter2"}
	b, _ := json.Marshal(s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), string(b)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("the secret leaks: %s", out)
		}
	}
	if s.AssignSecret.Reveal() != "hunter2" {
		t.Fatal("Reveal must return the secret")
	}
}
