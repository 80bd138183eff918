package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
)

// TestDrainedAgentStillWatchedWhileItHostsSessions: a disabled agent gets
// nothing new, but its live sessions' containers are still watched and
// audited until they are gone.
func TestDrainedAgentStillWatchedWhileItHostsSessions(t *testing.T) {
	t.Parallel()
	conn, _ := dbtest.New(t)
	zone, ws := uuid.NewString(), uuid.NewString()
	mustExec(t, conn, `INSERT INTO zones (id, name) VALUES ($1, 'z')`, zone)
	mustExec(t, conn, `INSERT INTO workspaces (id, name, image) VALUES ($1, 'w', 'img')`, ws)
	agents := map[string]string{}
	for _, a := range []struct {
		name    string
		enabled bool
	}{{"enabled", true}, {"drained", false}, {"idle-disabled", false}} {
		id := uuid.NewString()
		agents[a.name] = id
		mustExec(t, conn, `INSERT INTO agents (id, name, zone_id, docker_endpoint, cores, memory_mb, enabled)
			VALUES ($1, $2, $3, $4, 4, 4096, $5)`, id, a.name, zone, "unix:///"+a.name, a.enabled)
	}
	mustExec(t, conn, `INSERT INTO sessions (id, workspace_id, zone_id, agent_id, origin, status)
		VALUES ($1, $2, $3, $4, 'on_demand', 'running')`, uuid.NewString(), ws, zone, agents["drained"])
	mustExec(t, conn, `INSERT INTO sessions (id, workspace_id, zone_id, agent_id, origin, status)
		VALUES ($1, $2, $3, $4, 'on_demand', 'destroyed')`, uuid.NewString(), ws, zone, agents["idle-disabled"])

	got, err := postgres.New(conn, "test").ListWatchedAgents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range got {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"drained", "enabled"}) {
		t.Fatalf("watched agents %v, want the enabled one and the drained one still hosting a session", names)
	}
}
