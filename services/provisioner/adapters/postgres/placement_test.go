package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
)

func mustExec(t *testing.T, conn *sqlx.DB, q string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestConcurrentPlacementsNeverOverCommitAnAgent places 12 sessions of
// half a core at once on zones whose agents have 2 + 1 cores: exactly 6
// fit, each agent holds what it can, and the rest fail for capacity.
func TestConcurrentPlacementsNeverOverCommitAnAgent(t *testing.T) {
	t.Parallel()
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	zoneA, zoneB, ws := uuid.NewString(), uuid.NewString(), uuid.NewString()
	mustExec(t, conn, `INSERT INTO zones (id, name) VALUES ($1, 'zone-a'), ($2, 'zone-b')`, zoneA, zoneB)
	mustExec(t, conn, `INSERT INTO agents (id, name, zone_id, docker_endpoint, cores, memory_mb) VALUES
		($1, 'a1', $3, 'unix:///var/run/docker.sock', 2, 4096),
		($2, 'b1', $4, 'unix:///var/run/docker.sock', 1, 4096)`, uuid.NewString(), uuid.NewString(), zoneA, zoneB)
	mustExec(t, conn, `INSERT INTO workspaces (id, name, image, cores, memory_mb) VALUES ($1, 'w', 'img', 0.5, 128)`, ws)

	ids := make([]string, 12)
	for i := range ids {
		ids[i] = uuid.NewString()
		if _, err := sessions.Insert(ctx, conn, sessions.New{
			ID: ids[i], RequestID: "r-" + ids[i], WorkspaceID: ws, ZoneID: zoneA,
			Origin: sessions.OriginOnDemand, Cores: 0.5, MemoryMB: 128,
		}); err != nil {
			t.Fatal(err)
		}
	}
	store := postgres.New(conn, "greenroom/test")
	var wg sync.WaitGroup
	var mu sync.Mutex
	placed := map[string]int{}
	failed := 0
	for _, id := range ids {
		wg.Go(func() {
			sc, failure, err := store.PlaceSession(ctx, id, []string{"zone-a", "zone-b"}, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("PlaceSession: %v", err)
			case failure != nil:
				if failure.Reason != events.ReasonNoCapacity {
					t.Errorf("failure %+v", failure)
				}
				failed++
			default:
				placed[sc.Agent.Name]++
				if want := map[string]string{"a1": "zone-a", "b1": "zone-b"}[sc.Agent.Name]; sc.Zone != want {
					t.Errorf("session on %s recorded in zone %s", sc.Agent.Name, sc.Zone)
				}
			}
		})
	}
	wg.Wait()
	if placed["a1"] != 4 || placed["b1"] != 2 || failed != 6 {
		t.Errorf("placed %v, failed %d; want a1: 4, b1: 2, failed 6", placed, failed)
	}
	var n int
	if err := conn.Get(&n, `SELECT count(*) FROM outbox WHERE subject = 'greenroom.session.failed'`); err != nil || n != 6 {
		t.Errorf("%d session.failed events in the outbox (err %v), want 6", n, err)
	}
}

func TestPlacementIsKeptOnRedelivery(t *testing.T) {
	t.Parallel()
	conn, _ := dbtest.New(t)
	ctx := context.Background()
	zone, ws, id := uuid.NewString(), uuid.NewString(), uuid.NewString()
	mustExec(t, conn, `INSERT INTO zones (id, name) VALUES ($1, 'z')`, zone)
	mustExec(t, conn, `INSERT INTO agents (id, name, zone_id, docker_endpoint, cores, memory_mb) VALUES ($1, 'a1', $2, 'unix:///x', 1, 1024)`, uuid.NewString(), zone)
	mustExec(t, conn, `INSERT INTO workspaces (id, name, image, cores, memory_mb) VALUES ($1, 'w', 'img', 1, 1024)`, ws)
	if _, err := sessions.Insert(ctx, conn, sessions.New{ID: id, RequestID: "r", WorkspaceID: ws, ZoneID: zone, Origin: sessions.OriginOnDemand, Cores: 1, MemoryMB: 1024}); err != nil {
		t.Fatal(err)
	}
	store := postgres.New(conn, "greenroom/test")
	for i := range 2 {
		// The agent is full after the first placement, but the second
		// delivery finds the session already placed and keeps it.
		sc, failure, err := store.PlaceSession(ctx, id, []string{"z"}, nil)
		if err != nil || failure != nil || sc.Agent == nil || sc.Agent.Name != "a1" {
			t.Fatalf("delivery %d: agent %v failure %v err %v", i+1, sc.Agent, failure, err)
		}
	}
}
