package service_test

import (
	"context"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// obj is a JSON object as the API answers it.
type obj map[string]any

func (o obj) str(key string) string {
	s, _ := o[key].(string)
	return s
}

// stagingZone creates a zone that may host staged sessions (real domains).
func (h *harness) stagingZone(name string) obj {
	h.t.Helper()
	var z obj
	h.must(201, "POST", "/api/v1/zones", obj{
		"name": name, "allow_origin_domain": name + ".example.test", "upstream_auth_address": "auth." + name + ".example.test",
	}, &z)
	return z
}

// create POSTs body to /api/v1/<collection> and returns the created object.
func (h *harness) create(collection string, body obj) obj {
	h.t.Helper()
	var o obj
	h.must(201, "POST", "/api/v1/"+collection, body, &o)
	return o
}

// world is the smallest configuration a session can be requested in: zone
// eu (real domains), workspace demo, group everyone, user alice.
type world struct {
	zone, workspace, group, user obj
}

func (h *harness) world() world {
	h.t.Helper()
	return world{
		zone:      h.stagingZone("eu"),
		workspace: h.create("workspaces", obj{"name": "demo", "image": "greenroom/demo:latest", "cores": 0.5, "memory_mb": 256}),
		group:     h.create("groups", obj{"name": "everyone"}),
		user:      h.create("users", obj{"username": "alice", "groups": []string{"everyone"}}),
	}
}

// insertSession stores a session row as the assigner would, for requestID
// ("" for a staged session), and moves it to status (provisioning, staged
// or running).
func (h *harness) insertSession(w world, requestID string, status sessions.Status, stagingConfigID string) sessions.Session {
	h.t.Helper()
	return h.insertSessionWith(w, requestID, status, sessions.New{StagingConfigID: stagingConfigID})
}

// insertSessionWith is insertSession for a session with more of n's fields
// (its staging config, on-demand reason, limits) set.
func (h *harness) insertSessionWith(w world, requestID string, status sessions.Status, n sessions.New) sessions.Session {
	h.t.Helper()
	ctx := context.Background()
	n.ID, n.RequestID = uuid.NewString(), requestID
	n.WorkspaceID, n.ZoneID = w.workspace.str("id"), w.zone.str("id")
	n.Origin, n.Cores, n.MemoryMB = sessions.OriginOnDemand, 0.5, 256
	n.Permissions = events.Permissions{AllowAudio: true}
	if requestID != "" {
		n.UserID = w.user.str("id")
	}
	if n.StagingConfigID != "" {
		n.Origin = sessions.OriginStaged
	}
	s, err := sessions.Insert(ctx, h.deps.DB, n)
	if err != nil {
		h.t.Fatal(err)
	}
	if status == sessions.Provisioning {
		return s
	}
	if s, err = sessions.Transition(ctx, h.deps.DB, s.ID, sessions.Provisioning, status, sessions.Change{
		ContainerID: sessions.Ptr("c0ffee"), URL: sessions.Ptr("http://127.0.0.1:32768/"),
	}); err != nil {
		h.t.Fatalf("moving session to %s: %v", status, err)
	}
	return s
}

// insertViolation stores a violation as the assigner would.
func (h *harness) insertViolation(w world, requestID, setting string) {
	h.t.Helper()
	h.deps.DB.MustExec(`INSERT INTO violations (id, request_id, user_id, username, workspace_id, workspace, setting)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		uuid.NewString(), requestID, w.user.str("id"), w.user.str("username"), w.workspace.str("id"), w.workspace.str("name"), setting)
}

// outboxRows counts events not yet relayed.
func (h *harness) outboxRows() int {
	h.t.Helper()
	var n int
	if err := h.deps.DB.Get(&n, `SELECT count(*) FROM outbox`); err != nil {
		h.t.Fatal(err)
	}
	return n
}
