package service_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// serverPoolWorld is world() plus a server pool "desktops" (labels gpu and
// b) with servers desk-1 (3 sessions at most) and desk-2, a server outside
// any pool, and a workspace "desk" whose sessions run on the pool.
func (h *harness) serverPoolWorld() world {
	h.t.Helper()
	w := h.world()
	h.create("pools", obj{"name": "desktops", "type": "server", "server_assignment": true, "labels": []string{"gpu", "b"}})
	h.create("servers", obj{"name": "desk-1", "zone": "eu", "pool": "desktops", "address": "10.0.0.1", "max_sessions": 3,
		"labels": []string{"a", "gpu"}})
	h.create("servers", obj{"name": "desk-2", "zone": "eu", "pool": "desktops", "address": "10.0.0.2"})
	h.create("servers", obj{"name": "loose", "zone": "eu", "address": "10.0.0.9"})
	w.workspace = h.create("workspaces", obj{"name": "desk", "image": "rdp", "server_pool": "desktops"})
	return w
}

// insertServerSession stores a session of w assigned to the server named
// server, in status, directly in SQL (as the provisioner's assignment
// would), and returns its id.
func (h *harness) insertServerSession(w world, server, status string) string {
	h.t.Helper()
	id := uuid.NewString()
	h.deps.DB.MustExec(`INSERT INTO sessions (id, request_id, workspace_id, zone_id, server_id, user_id, origin, status)
		VALUES ($1, $2, $3, $4, (SELECT id FROM servers WHERE name = $5), $6, 'on_demand', $7)`,
		id, "req-"+id, w.workspace.str("id"), w.zone.str("id"), server, w.user.str("id"), status)
	return id
}

// liveSessionsInSQL counts, straight from the sessions table, the live
// sessions of the server named server.
func (h *harness) liveSessionsInSQL(server string) int {
	h.t.Helper()
	var n int
	if err := h.deps.DB.Get(&n, `SELECT count(*) FROM sessions s JOIN servers sv ON sv.id = s.server_id
		WHERE sv.name = $1 AND s.status NOT IN ('destroyed', 'failed')`, server); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// members returns the members of the pool named pool by name, from GET
// /api/v1/pools/{name} and from the pool list, failing unless both agree.
func (h *harness) members(pool string) map[string]obj {
	h.t.Helper()
	var one obj
	h.must(200, "GET", "/api/v1/pools/"+pool, nil, &one)
	var all struct{ Items []obj }
	h.must(200, "GET", "/api/v1/pools", nil, &all)
	i := slices.IndexFunc(all.Items, func(p obj) bool { return p.str("name") == pool })
	if i < 0 {
		h.t.Fatalf("pool %s is not listed", pool)
	}
	out := map[string]obj{}
	listed, _ := one["members"].([]any)
	for _, m := range listed {
		out[obj(m.(map[string]any)).str("name")] = m.(map[string]any)
	}
	if fromList, _ := all.Items[i]["members"].([]any); len(fromList) != len(listed) {
		h.t.Errorf("pool %s: %d members in the list, %d in GET", pool, len(fromList), len(listed))
	}
	return out
}

func TestServerSessionsAreTheLiveSessionsAssignedToIt(t *testing.T) {
	h := newHarness(t)
	w := h.serverPoolWorld()
	var ids []string
	for _, status := range []string{"provisioning", "assigning", "running", "running", "destroying", "destroyed", "failed"} {
		ids = append(ids, h.insertServerSession(w, "desk-1", status))
	}
	h.insertServerSession(w, "desk-2", "running")

	check := func(when string) {
		t.Helper()
		for _, server := range []string{"desk-1", "desk-2", "loose"} {
			want := h.liveSessionsInSQL(server)
			var s obj
			h.must(200, "GET", "/api/v1/servers/"+server, nil, &s)
			if s["sessions"] != float64(want) {
				t.Errorf("%s: GET server %s: sessions %v, SQL counts %d live", when, server, s["sessions"], want)
			}
			var list struct{ Items []obj }
			h.must(200, "GET", "/api/v1/servers", nil, &list)
			for _, item := range list.Items {
				if item.str("name") == server && item["sessions"] != float64(want) {
					t.Errorf("%s: server list: %s has sessions %v, SQL counts %d live", when, server, item["sessions"], want)
				}
			}
			if server == "loose" {
				continue
			}
			if m := h.members("desktops")[server]; m["sessions"] != float64(want) {
				t.Errorf("%s: pool member %s: sessions %v, SQL counts %d live", when, server, m["sessions"], want)
			}
		}
	}
	check("at first")
	if n := h.liveSessionsInSQL("desk-1"); n != 5 {
		t.Fatalf("the fixture has %d live sessions on desk-1, want 5", n)
	}

	// Sessions end: the counts follow, with nothing to update but the
	// sessions themselves.
	h.deps.DB.MustExec(`UPDATE sessions SET status = 'destroyed', destroyed_at = now() WHERE id = ANY($1)`, pq.Array([]string{ids[0], ids[2]}))
	h.deps.DB.MustExec(`UPDATE sessions SET status = 'failed' WHERE id = $1`, ids[1])
	check("after three ended")
	if n := h.liveSessionsInSQL("desk-1"); n != 2 {
		t.Errorf("desk-1 has %d live sessions in SQL, want 2", n)
	}
}

func TestSessionsNameTheirServer(t *testing.T) {
	h := newHarness(t)
	w := h.serverPoolWorld()
	id := h.insertServerSession(w, "desk-1", "running")
	var s obj
	h.must(200, "GET", "/api/v1/sessions/"+id, nil, &s)
	if s.str("server") != "desk-1" || s["agent"] != nil || s.str("workspace") != "desk" {
		t.Errorf("server session: %v", s)
	}
	var list struct{ Items []obj }
	h.must(200, "GET", "/api/v1/sessions?user=alice", nil, &list)
	if len(list.Items) != 1 || list.Items[0].str("server") != "desk-1" {
		t.Errorf("session list: %v", list.Items)
	}

	// The answer to a session request is built the same way.
	h.must(http.StatusOK, "POST", "/api/v1/sessions", obj{"user": "alice", "workspace": "desk", "zone": "eu", "request_id": "req-" + id}, &s)
	if s.str("id") != id || s.str("server") != "desk-1" {
		t.Errorf("session request answer: %v", s)
	}

	// A container session has no server, and says so.
	w.workspace = h.create("workspaces", obj{"name": "demo2", "image": "x"})
	other := h.insertSession(w, "req-c", sessions.Running, "")
	h.must(200, "GET", "/api/v1/sessions/"+other.ID, nil, &s)
	if v, ok := s["server"]; !ok || v != nil {
		t.Errorf("container session: server %v (present %v), want null", v, ok)
	}
}

func TestDeleteServerWithLiveSessionsIsConflict(t *testing.T) {
	h := newHarness(t)
	w := h.serverPoolWorld()
	live := h.insertServerSession(w, "desk-1", "running")
	h.insertServerSession(w, "desk-1", "assigning")
	ended := h.insertServerSession(w, "desk-1", "destroyed")

	before := h.outboxRows()
	p := h.problem(http.StatusConflict, "", "DELETE", "/api/v1/servers/desk-1", nil)
	if !strings.Contains(p.Detail, `server "desk-1" has 2 live session(s)`) {
		t.Errorf("detail %q does not count the live sessions", p.Detail)
	}
	if after := h.outboxRows(); after != before {
		t.Errorf("a refused delete announced something: outbox %d → %d", before, after)
	}
	h.must(200, "GET", "/api/v1/servers/desk-1", nil, nil)

	// Once they have ended, the server goes and its sessions forget it.
	h.deps.DB.MustExec(`UPDATE sessions SET status = 'destroyed' WHERE status <> 'destroyed'`)
	h.must(204, "DELETE", "/api/v1/servers/desk-1", nil, nil)
	for _, id := range []string{live, ended} {
		var s obj
		h.must(200, "GET", "/api/v1/sessions/"+id, nil, &s)
		if v, ok := s["server"]; !ok || v != nil {
			t.Errorf("session %s of a deleted server: server %v", id, v)
		}
	}
}

func TestServerWithLiveSessionsCannotMoveToAnotherPoolOrZone(t *testing.T) {
	h := newHarness(t)
	w := h.serverPoolWorld()
	h.create("pools", obj{"name": "other", "type": "server"})
	h.create("zones", obj{"name": "us"})
	h.insertServerSession(w, "desk-1", "running")

	p := h.problem(http.StatusConflict, "pool", "PATCH", "/api/v1/servers/desk-1", obj{"pool": "other"})
	if !strings.Contains(p.Detail, `server "desk-1" has 1 live session(s)`) {
		t.Errorf("detail %q does not count the live sessions", p.Detail)
	}
	h.problem(http.StatusConflict, "pool", "PATCH", "/api/v1/servers/desk-1", obj{"pool": nil})
	h.problem(http.StatusConflict, "zone", "PATCH", "/api/v1/servers/desk-1", obj{"zone": "us"})
	// What only steers new sessions is allowed, and so is moving an idle
	// server.
	h.must(200, "PATCH", "/api/v1/servers/desk-1", obj{"max_sessions": 1, "enabled": false}, nil)
	h.must(200, "PATCH", "/api/v1/servers/desk-2", obj{"pool": "other", "zone": "us"}, nil)
}

func TestServerLabelsAreKeptAndValidated(t *testing.T) {
	h := newHarness(t)
	h.serverPoolWorld()
	var s obj
	h.must(200, "GET", "/api/v1/servers/desk-1", nil, &s)
	if got := s["labels"]; len(got.([]any)) != 2 {
		t.Errorf("labels %v", got)
	}
	h.must(200, "PATCH", "/api/v1/servers/desk-1", obj{"labels": []string{"ssd"}}, &s)
	if got := s["labels"].([]any); len(got) != 1 || got[0] != "ssd" {
		t.Errorf("patched labels %v", got)
	}
	h.must(200, "GET", "/api/v1/servers/desk-2", nil, &s)
	if got, ok := s["labels"].([]any); !ok || len(got) != 0 {
		t.Errorf("a server created without labels has %v, want []", s["labels"])
	}
	h.problem(http.StatusBadRequest, "labels", "PATCH", "/api/v1/servers/desk-1", obj{"labels": nil})
	h.problem(http.StatusBadRequest, "labels", "POST", "/api/v1/servers", `{"name":"s9","zone":"eu","address":"h","labels":"gpu"}`)
}

func TestPoolMembersShowSessionsCapacityAndEffectiveLabels(t *testing.T) {
	h := newHarness(t)
	w := h.serverPoolWorld()
	h.create("users", obj{"username": "bob"})
	h.must(200, "PATCH", "/api/v1/servers/desk-2", obj{"assigned_user": "bob"}, nil)
	h.insertServerSession(w, "desk-1", "running")

	servers := h.members("desktops")
	if len(servers) != 2 || servers["loose"] != nil {
		t.Fatalf("server pool members %v, want desk-1 and desk-2", servers)
	}
	d1, d2 := servers["desk-1"], servers["desk-2"]
	if d1.str("zone") != "eu" || d1.str("address") != "10.0.0.1" || d1["max_sessions"] != 3.0 || d1["sessions"] != 1.0 ||
		d1["enabled"] != true || d1["assigned_user"] != nil {
		t.Errorf("desk-1: %v", d1)
	}
	if d2.str("assigned_user") != "bob" || d2["sessions"] != 0.0 || d2["max_sessions"] != 1.0 {
		t.Errorf("desk-2: %v", d2)
	}
	for name, want := range map[string][]any{"desk-1": {"a", "b", "gpu"}, "desk-2": {"b", "gpu"}} {
		if got := servers[name]["effective_labels"].([]any); !slices.Equal(got, want) {
			t.Errorf("%s: effective labels %v, want %v (its own and the pool's, once each, sorted)", name, got, want)
		}
	}
	var pool obj
	h.must(200, "GET", "/api/v1/pools/desktops", nil, &pool)
	if ws := pool["workspaces"].([]any); len(ws) != 1 || ws[0] != "desk" {
		t.Errorf("workspaces of the server pool: %v", ws)
	}

	// A docker_agent pool lists its agents with their free capacity.
	h.create("pools", obj{"name": "gpu-agents", "type": "docker_agent", "labels": []string{"gpu"}})
	a1 := h.create("agents", obj{"name": "a1", "zone": "eu", "pool": "gpu-agents", "docker_endpoint": "tcp://10.0.0.9:2375",
		"cores": 4, "memory_mb": 4096, "labels": []string{"ssd", "gpu"}})
	h.create("agents", obj{"name": "a2", "zone": "eu", "docker_endpoint": "tcp://10.0.0.9:2376", "cores": 1, "memory_mb": 512})
	var demo obj
	h.must(200, "GET", "/api/v1/workspaces/demo", nil, &demo)
	h.deps.DB.MustExec(`INSERT INTO sessions (id, workspace_id, zone_id, agent_id, origin, status, cores, memory_mb)
		VALUES ($1, $2, $3, $4, 'on_demand', 'running', 1.5, 1024), ($5, $2, $3, $4, 'on_demand', 'destroyed', 1, 1024)`,
		uuid.NewString(), demo.str("id"), w.zone.str("id"), a1.str("id"), uuid.NewString())
	agents := h.members("gpu-agents")
	if len(agents) != 1 {
		t.Fatalf("agent pool members %v, want a1 only", agents)
	}
	m := agents["a1"]
	if m["sessions"] != 1.0 || m["free_cores"] != 2.5 || m["free_memory_mb"] != 3072.0 || m["cores"] != 4.0 || m["memory_mb"] != 4096.0 ||
		!slices.Equal(m["effective_labels"].([]any), []any{"gpu", "ssd"}) {
		t.Errorf("a1: %v", m)
	}
	h.must(200, "GET", "/api/v1/pools/gpu-agents", nil, &pool)
	if ws := pool["workspaces"].([]any); len(ws) != 0 {
		t.Errorf("workspaces of an agent pool: %v", ws)
	}

	// A pool's new labels are its members' at once; a new pool has none.
	h.must(200, "PATCH", "/api/v1/pools/gpu-agents", obj{"labels": []string{"fast"}}, &pool)
	if got := pool["members"].([]any)[0].(map[string]any)["effective_labels"].([]any); !slices.Equal(got, []any{"fast", "gpu", "ssd"}) {
		t.Errorf("after the pool's labels changed: %v", got)
	}
	empty := h.create("pools", obj{"name": "empty", "type": "server"})
	if got, ok := empty["members"].([]any); !ok || len(got) != 0 {
		t.Errorf("new pool: members %v", empty["members"])
	}
}

func TestServerAssignmentOnlyOnServerPools(t *testing.T) {
	h := newHarness(t)
	h.world()
	for _, tc := range []struct {
		name, method, path string
		body               obj
	}{
		{"created on a docker_agent pool", "POST", "/api/v1/pools", obj{"name": "agents", "type": "docker_agent", "server_assignment": true}},
		{"set on a docker_agent pool", "PATCH", "/api/v1/pools/plain", obj{"server_assignment": true}},
		{"type changed under it", "PATCH", "/api/v1/pools/assigning", obj{"type": "docker_agent"}},
	} {
		h.create("pools", obj{"name": "plain", "type": "docker_agent"})
		h.create("pools", obj{"name": "assigning", "type": "server", "server_assignment": true})
		t.Run(tc.name, func(t *testing.T) {
			p := h.in(t).problem(http.StatusBadRequest, "server_assignment", tc.method, tc.path, tc.body)
			if !strings.Contains(p.Detail, "docker_agent pool") {
				t.Errorf("detail %q", p.Detail)
			}
		})
		h.must(204, "DELETE", "/api/v1/pools/plain", nil, nil)
		h.must(204, "DELETE", "/api/v1/pools/assigning", nil, nil)
	}

	// Both at once is a valid docker_agent pool.
	h.create("pools", obj{"name": "assigning", "type": "server", "server_assignment": true})
	var p obj
	h.must(200, "PATCH", "/api/v1/pools/assigning", obj{"type": "docker_agent", "server_assignment": false}, &p)
	if p.str("type") != "docker_agent" || p["server_assignment"] != false {
		t.Errorf("pool %v", p)
	}

	// Server assignment cannot be turned off under assigned servers.
	h.create("pools", obj{"name": "desktops", "type": "server", "server_assignment": true})
	h.create("servers", obj{"name": "desk-1", "zone": "eu", "pool": "desktops", "address": "10.0.0.1", "assigned_user": "alice"})
	c := h.problem(http.StatusConflict, "server_assignment", "PATCH", "/api/v1/pools/desktops", obj{"server_assignment": false})
	if !strings.Contains(c.Detail, "1 server(s) assigned") || !strings.Contains(c.Detail, "assigned_user") {
		t.Errorf("detail %q", c.Detail)
	}
	h.must(200, "GET", "/api/v1/pools/desktops", nil, &p)
	if p["server_assignment"] != true {
		t.Errorf("a refused change was applied: %v", p)
	}
	h.must(200, "PATCH", "/api/v1/servers/desk-1", obj{"assigned_user": nil}, nil)
	h.must(200, "PATCH", "/api/v1/pools/desktops", obj{"server_assignment": false}, nil)
}

func TestPoolMembersMustMatchThePoolType(t *testing.T) {
	h := newHarness(t)
	h.world()
	h.create("pools", obj{"name": "desktops", "type": "server"})
	h.create("pools", obj{"name": "agents", "type": "docker_agent"})
	h.create("agents", obj{"name": "a1", "zone": "eu", "docker_endpoint": "tcp://10.0.0.9:2375", "cores": 1, "memory_mb": 512})
	h.create("servers", obj{"name": "s1", "zone": "eu", "address": "10.0.0.1"})
	for _, tc := range []struct {
		name, method, path string
		body               obj
		field, want        string
	}{
		{"new agent in a server pool", "POST", "/api/v1/agents",
			obj{"name": "a2", "zone": "eu", "pool": "desktops", "docker_endpoint": "tcp://10.0.0.9:2376", "cores": 1, "memory_mb": 512}, "pool", "docker_agent"},
		{"agent moved to a server pool", "PATCH", "/api/v1/agents/a1", obj{"pool": "desktops"}, "pool", "docker_agent"},
		{"new server in an agent pool", "POST", "/api/v1/servers", obj{"name": "s2", "zone": "eu", "address": "h", "pool": "agents"}, "pool", "server"},
		{"server moved to an agent pool", "PATCH", "/api/v1/servers/s1", obj{"pool": "agents"}, "pool", "server"},
		{"new workspace on an agent pool", "POST", "/api/v1/workspaces", obj{"name": "w2", "image": "x", "server_pool": "agents"}, "server_pool", "server"},
		{"workspace moved to an agent pool", "PATCH", "/api/v1/workspaces/demo", obj{"server_pool": "agents"}, "server_pool", "server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := h.in(t).problem(http.StatusBadRequest, tc.field, tc.method, tc.path, tc.body)
			if !strings.Contains(p.Detail, "a "+tc.want+" pool is needed") {
				t.Errorf("detail %q", p.Detail)
			}
		})
	}
	for _, pool := range []string{"desktops", "agents"} {
		if m := h.members(pool); len(m) != 0 {
			t.Errorf("pool %s gained members %v", pool, m)
		}
	}
}

func TestServerPoolWorkspaceCannotBeStaged(t *testing.T) {
	h := newHarness(t)
	h.serverPoolWorld()
	p := h.problem(http.StatusBadRequest, "workspace", "POST", "/api/v1/staging-configs", obj{"zone": "eu", "workspace": "desk", "desired_sessions": 1})
	for _, want := range []string{`workspace "desk"`, `pool "desktops"`, "cannot be staged"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail %q lacks %q", p.Detail, want)
		}
	}

	// A staged workspace cannot move to a server pool while it is staged.
	sc := h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})
	c := h.problem(http.StatusConflict, "server_pool", "PATCH", "/api/v1/workspaces/demo", obj{"server_pool": "desktops"})
	if !strings.Contains(c.Detail, "1 staging config(s)") {
		t.Errorf("detail %q", c.Detail)
	}
	var ws obj
	h.must(200, "GET", "/api/v1/workspaces/demo", nil, &ws)
	if ws["server_pool"] != nil {
		t.Errorf("a refused change was applied: %v", ws)
	}
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"server_pool": nil, "cores": 2}, nil)
	h.must(204, "DELETE", "/api/v1/staging-configs/"+sc.str("id"), nil, nil)
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"server_pool": "desktops"}, nil)
	h.problem(http.StatusBadRequest, "workspace", "POST", "/api/v1/staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})
}
