package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/apptest"
)

// fixedServer is a fixed server of a server pool: a real TCP listener on
// loopback, closed when the test ends (or earlier, to take it down).
func fixedServer(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	stop = func() { _ = ln.Close() }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// request asks for a session of workspace over HTTP and returns the status
// and the answer, whatever they are.
func (g *greenroom) request(user, workspace, zone string) (int, map[string]any) {
	return g.call(http.MethodPost, "/api/v1/sessions?wait=30s", map[string]any{"user": user, "workspace": workspace, "zone": zone})
}

// members returns the session count of each member of a pool, by name,
// as the pools API shows them.
func (g *greenroom) members(pool string) map[string]int {
	g.t.Helper()
	status, p := g.call(http.MethodGet, "/api/v1/pools/"+pool, nil)
	if status != http.StatusOK {
		g.t.Fatalf("GET pool %s: %d %v", pool, status, p)
	}
	out := map[string]int{}
	ms, _ := p["members"].([]any)
	for _, m := range ms {
		m := m.(map[string]any)
		out[m["name"].(string)] = int(m["sessions"].(float64))
	}
	return out
}

// liveOnServers counts live sessions per server straight from the sessions
// table, the source of truth.
func (g *greenroom) liveOnServers() map[string]int {
	g.t.Helper()
	var rows []struct {
		Name string `db:"name"`
		N    int    `db:"n"`
	}
	if err := g.env.DB.Select(&rows, `SELECT sv.name, count(s.id) AS n FROM servers sv
		LEFT JOIN sessions s ON s.server_id = sv.id AND s.status NOT IN ('destroyed', 'failed')
		GROUP BY sv.name`); err != nil {
		g.t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Name] = r.N
	}
	return out
}

// TestServerPoolEndToEnd: a workspace on a pool of fixed servers, through
// the HTTP API, the bus and PostgreSQL; the servers are real TCP
// listeners.
func TestServerPoolEndToEnd(t *testing.T) {
	g := start(t)
	g.create("/api/v1/zones", map[string]any{"name": "zone-a", "search_alternate_zones": true, "priority": 1,
		"allow_origin_domain": "greenroom.test", "upstream_auth_address": "greenroom.test"})
	g.create("/api/v1/zones", map[string]any{"name": "zone-b", "priority": 2,
		"allow_origin_domain": "greenroom.test", "upstream_auth_address": "greenroom.test"})
	g.create("/api/v1/pools", map[string]any{"name": "rdp", "type": "server", "labels": []string{"windows"}})
	stops := map[string]func(){}
	for _, name := range []string{"s1", "s2", "s3"} {
		addr, stop := fixedServer(t)
		stops[name] = stop
		g.create("/api/v1/servers", map[string]any{"name": name, "zone": "zone-a", "pool": "rdp", "address": addr, "max_sessions": 10})
	}
	ws := workspace("desk")
	ws["server_pool"] = "rdp"
	ws["include_labels"] = []string{"windows"}
	g.create("/api/v1/workspaces", ws)
	g.create("/api/v1/groups", map[string]any{"name": "everyone", "priority": 100})
	users := []string{"alice", "bob", "carol", "dave", "erin"}
	for _, u := range users {
		g.create("/api/v1/users", map[string]any{"username": u, "groups": []string{"everyone"}})
	}

	// 30 sessions from 10 clients at once: 10 on each server.
	var mu sync.Mutex
	var ids []string
	burst := func(n int, zone string) (fails []string) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 10 {
			wg.Go(func() {
				for i := range next {
					status, s := g.request(users[i%len(users)], "desk", zone)
					mu.Lock()
					if status == http.StatusCreated && s["status"] == "running" {
						ids = append(ids, s["id"].(string))
					} else {
						fails = append(fails, fmt.Sprintf("%d %v", status, s))
					}
					mu.Unlock()
				}
			})
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		return fails
	}
	if fails := burst(30, "zone-a"); len(fails) != 0 {
		t.Fatalf("%d of 30 failed: %v", len(fails), fails)
	}
	if got := g.members("rdp"); got["s1"] != 10 || got["s2"] != 10 || got["s3"] != 10 {
		t.Fatalf("pool members' sessions = %v, want 10 each", got)
	}
	_, s := g.call(http.MethodGet, "/api/v1/sessions/"+ids[0], nil)
	if !strings.HasPrefix(fmt.Sprint(s["url"]), "tcp://127.0.0.1:") || s["server"] == nil || s["agent"] != nil {
		t.Fatalf("a session on a server: %v", s)
	}

	// The 31st: 503, with the reason.
	status, p := g.request("alice", "desk", "zone-a")
	detail := fmt.Sprint(p["detail"])
	if status != http.StatusServiceUnavailable || !strings.Contains(detail, "server s1 has 10 of 10 sessions") ||
		!strings.Contains(detail, "server s3 has 10 of 10 sessions") || !strings.Contains(detail, "zone-b: no servers of pool rdp") {
		t.Fatalf("31st session: %d %v; want 503 naming every full server", status, p)
	}

	// A full zone falls through to the next one of the zone search.
	addr, _ := fixedServer(t)
	g.create("/api/v1/servers", map[string]any{"name": "s4", "zone": "zone-b", "pool": "rdp", "address": addr, "max_sessions": 1})
	status, s = g.request("bob", "desk", "zone-a")
	if status != http.StatusCreated || s["zone"] != "zone-b" || s["server"] != "s4" {
		t.Fatalf("with zone-a full: %d %v; want a session on s4 in zone-b", status, s)
	}
	ids = append(ids, s["id"].(string))

	// A server down gets nothing new; ending sessions frees their places
	// at once, and the counts never drift from the sessions table.
	onS1 := g.liveOnServers()["s1"]
	stops["s1"]()
	created := len(ids)
	var wg sync.WaitGroup
	for _, id := range ids[:15] {
		wg.Go(func() {
			if status, out := g.call(http.MethodDelete, "/api/v1/sessions/"+id, nil); status >= 300 {
				t.Errorf("DELETE session %s: %d %v", id, status, out)
			}
		})
	}
	var fails []string
	wg.Go(func() { fails = burst(5, "zone-a") })
	wg.Wait()
	// A DELETE asks for the destroy (greenroom.session.destroy): wait for
	// the 15 to be destroyed, not merely for none to be destroying.
	apptest.Eventually(t, 30*time.Second, "the ended sessions destroyed, none destroying or provisioning", func() bool {
		var n int
		_ = g.env.DB.Get(&n, `SELECT count(*) FROM sessions
			WHERE status IN ('destroying', 'provisioning') OR (id = ANY($1) AND status <> 'destroyed')`, pq.Array(ids[:15]))
		return n == 0
	})
	made := len(ids) - created
	if made+len(fails) != 5 {
		t.Fatalf("%d made and %d failed of 5", made, len(fails))
	}
	api, db := g.members("rdp"), g.liveOnServers()
	total := 0
	for _, name := range []string{"s1", "s2", "s3", "s4"} {
		if api[name] != db[name] || db[name] > 10 {
			t.Fatalf("sessions per server: API %v, sessions table %v; want them equal and none over 10", api, db)
		}
		total += db[name]
	}
	// 30 + 1 on s4, 15 of them ended, and what the burst made.
	if want := 31 - 15 + made; total != want {
		t.Fatalf("%d live sessions on the servers, want %d (%d made by the burst)", total, want, made)
	}
	if db["s1"] > onS1 {
		t.Fatalf("s1, down, got sessions: %d → %d", onS1, db["s1"])
	}
	// s1's share goes elsewhere: the 15 ended sessions freed about 5 places
	// on each server, the burst took at most 5, and the rest is on the
	// reachable servers only.
	status, s = g.request("carol", "desk", "zone-a")
	if status != http.StatusCreated || s["server"] == "s1" || s["server"] == nil {
		t.Fatalf("carol: %d %v; want a session on a reachable server", status, s)
	}
}
