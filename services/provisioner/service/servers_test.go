package service_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// listener is a fixed server: a real TCP listener on loopback that accepts
// and holds connections until it is closed.
type listener struct {
	ln   net.Listener
	addr string
}

func startListener(t *testing.T) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{ln: ln, addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(l.stop)
	return l
}

// stop closes the listener: its address then refuses connections.
func (l *listener) stop() { _ = l.ln.Close() }

// serverPool is a server pool with its servers, a workspace on it and
// users, in zone-a.
type serverPool struct {
	fixture
	poolID  string
	servers map[string]string // name → id
}

func (e *env) addServerPool(name string, assignment bool, labels ...string) string {
	id := uuid.NewString()
	labels = append([]string{}, labels...) // never NULL
	e.exec(`INSERT INTO pools (id, name, type, server_assignment, labels) VALUES ($1, $2, 'server', $3, $4)`,
		id, name, assignment, pq.Array(labels))
	return id
}

func (e *env) addServer(zoneID, poolID, name, addr string, max int, labels ...string) string {
	id := uuid.NewString()
	labels = append([]string{}, labels...) // never NULL
	e.exec(`INSERT INTO servers (id, name, zone_id, pool_id, address, max_sessions, labels) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, name, zoneID, poolID, addr, max, pq.Array(labels))
	return id
}

// newServerPool makes zone-a, a pool "rdp" of one server per address with
// max sessions each, a workspace "desk" on it and the user alice.
func (e *env) newServerPool(max int, addrs ...string) serverPool {
	p := serverPool{fixture: fixture{zone: "zone-a", wsName: "desk", user: "alice"}, servers: map[string]string{}}
	p.zoneID = e.addZone(p.zone, "least_load")
	p.poolID = e.addServerPool("rdp", false)
	for i, a := range addrs {
		name := fmt.Sprintf("s%d", i+1)
		p.servers[name] = e.addServer(p.zoneID, p.poolID, name, a, max)
	}
	p.workspaceID = e.addWorkspace(p.wsName, workspaceOptions{})
	e.exec(`UPDATE workspaces SET server_pool_id = $1 WHERE id = $2`, p.poolID, p.workspaceID)
	p.userID = e.addUser(p.user)
	return p
}

// liveOn counts the live sessions of each server, by name, straight from
// the sessions table.
func (e *env) liveOn() map[string]int {
	e.t.Helper()
	var rows []struct {
		Name string `db:"name"`
		N    int    `db:"n"`
	}
	if err := e.db.SelectContext(e.ctx, &rows, `SELECT sv.name, count(s.id) AS n FROM servers sv
		LEFT JOIN sessions s ON s.server_id = sv.id AND s.status NOT IN ('destroyed', 'failed')
		GROUP BY sv.name`); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Name] = r.N
	}
	return out
}

// requestAll requests n sessions of f from 20 goroutines at once and
// waits for each outcome; it returns the session ids that became ready
// and, for the others, "reason: detail" of their session.failed.
func (e *env) requestAll(f fixture, n int) (ready []string, failed []string) {
	e.t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 20 {
		wg.Go(func() {
			for i := range next {
				ids[i], _ = e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, id := range ids {
		e.waitFor("the outcome of session "+id, 30*time.Second, func() bool {
			return e.session(id).Status.Terminal() || e.session(id).Status == sessions.Running
		})
		if s := e.session(id); s.Status == sessions.Running {
			ready = append(ready, id)
		} else {
			ev := e.waitEvent(events.TypeSessionFailed, 10*time.Second, dataIs("session_id", id))
			f := decode[events.SessionFailed](e.t, ev)
			failed = append(failed, f.Reason+": "+f.Detail)
		}
	}
	return ready, failed
}

func TestServerPoolSpreadsSessionsEvenlyAndAnswersTheOneTooManyWithTheReason(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := e.newServerPool(10, startListener(t).addr, startListener(t).addr, startListener(t).addr)

	// Half the room first: the fewest-sessions rule alone spreads them.
	ready, failed := e.requestAll(p.fixture, 15)
	if len(ready) != 15 || len(failed) != 0 {
		t.Fatalf("%d ready, %d failed (%v); want all 15 ready", len(ready), len(failed), failed)
	}
	if got := e.liveOn(); got["s1"] != 5 || got["s2"] != 5 || got["s3"] != 5 {
		t.Fatalf("sessions per server = %v, want 5 each", got)
	}
	more, failed := e.requestAll(p.fixture, 15)
	if ready = append(ready, more...); len(ready) != 30 || len(failed) != 0 {
		t.Fatalf("%d ready, %d failed (%v); want all 30 ready", len(ready), len(failed), failed)
	}
	if got := e.liveOn(); got["s1"] != 10 || got["s2"] != 10 || got["s3"] != 10 {
		t.Fatalf("sessions per server = %v, want 10 each", got)
	}
	// Each is running on its server, with no container, and announced.
	s := e.session(ready[0])
	if !s.ServerID.Valid || s.AgentID.Valid || s.ContainerID != "" || !strings.HasPrefix(s.URL, "tcp://127.0.0.1:") {
		t.Fatalf("session on a server = %+v", s)
	}
	ev := e.waitEvent(events.TypeSessionReady, 10*time.Second, dataIs("session_id", s.ID))
	if r := decode[events.SessionReady](t, ev); r.Server == "" || r.Agent != "" || r.URL != s.URL || r.Origin != sessions.OriginOnDemand {
		t.Fatalf("session.ready = %+v", r)
	}
	if n := len(e.containers(map[string]string{"greenroom.session": s.ID})); n != 0 {
		t.Fatalf("%d containers for a server session, want none", n)
	}

	_, failed = e.requestAll(p.fixture, 1)
	want := "no_capacity: no server of pool rdp can take the session: zone-a: server s1 has 10 of 10 sessions, server s2 has 10 of 10 sessions, server s3 has 10 of 10 sessions"
	if len(failed) != 1 || failed[0] != want {
		t.Fatalf("31st: failed %q, want %q", failed, want)
	}

	// Ending a session frees its place at once.
	e.emit(events.TypeSessionDestroy, events.SessionDestroy{SessionID: s.ID, Reason: "user_logout"})
	e.waitFor("the session destroyed", 10*time.Second, func() bool { return e.session(s.ID).Status == sessions.Destroyed })
	if ready, failed = e.requestAll(p.fixture, 1); len(ready) != 1 {
		t.Fatalf("after a destroy: failed %v, want the freed place taken", failed)
	}
	if got := e.liveOn(); got["s1"] != 10 || got["s2"] != 10 || got["s3"] != 10 {
		t.Fatalf("sessions per server = %v, want 10 each again", got)
	}
}

func TestUnreachableServerGetsNoSessions(t *testing.T) {
	e := newEnv(t, envOptions{})
	s1, s2, s3 := startListener(t), startListener(t), startListener(t)
	p := e.newServerPool(10, s1.addr, s2.addr, s3.addr)
	s1.stop()

	ready, failed := e.requestAll(p.fixture, 12)
	if len(ready) != 12 {
		t.Fatalf("%d ready, failed %v; want 12", len(ready), failed)
	}
	if got := e.liveOn(); got["s1"] != 0 || got["s2"] != 6 || got["s3"] != 6 {
		t.Fatalf("sessions per server = %v, want s1's share spread over s2 and s3", got)
	}
	// With every server down, the failure says so, server by server.
	s2.stop()
	s3.stop()
	_, failed = e.requestAll(p.fixture, 1)
	if len(failed) != 1 || !strings.Contains(failed[0], "server s1 is unreachable (dial tcp "+s1.addr) ||
		!strings.Contains(failed[0], "connection refused") || !strings.Contains(failed[0], "server s3 is unreachable") {
		t.Fatalf("failed %q; want each server unreachable with why", failed)
	}
}

func TestServerAssignmentIsExclusive(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := e.newServerPool(10, startListener(t).addr, startListener(t).addr)
	e.exec(`UPDATE pools SET server_assignment = true WHERE id = $1`, p.poolID)
	bob := p.fixture
	bob.user, bob.userID = "bob", e.addUser("bob")
	e.exec(`UPDATE servers SET assigned_user = 'alice' WHERE id = $1`, p.servers["s2"])

	// Alice's sessions all go to her server, though s1 is emptier.
	if ready, failed := e.requestAll(p.fixture, 3); len(ready) != 3 {
		t.Fatalf("alice: failed %v", failed)
	}
	// Bob's never go to hers.
	if ready, failed := e.requestAll(bob, 4); len(ready) != 4 {
		t.Fatalf("bob: failed %v", failed)
	}
	if got := e.liveOn(); got["s1"] != 4 || got["s2"] != 3 {
		t.Fatalf("sessions per server = %v, want alice's 3 on s2 and bob's 4 on s1", got)
	}
	// Her server full, alice gets no other one, and is told why.
	e.exec(`UPDATE servers SET max_sessions = 3 WHERE id = $1`, p.servers["s2"])
	_, failed := e.requestAll(p.fixture, 1)
	if len(failed) != 1 || !strings.Contains(failed[0], "server s1 is not the server assigned to alice (s2)") ||
		!strings.Contains(failed[0], "server s2 has 3 of 3 sessions") {
		t.Fatalf("failed %q", failed)
	}
	// Nor when her server is in a zone this request does not search.
	e.exec(`UPDATE servers SET zone_id = $1, max_sessions = 10 WHERE id = $2`, e.addZone("zone-b", "least_load"), p.servers["s2"])
	_, failed = e.requestAll(p.fixture, 1)
	if want := "no_capacity: no server of pool rdp can take the session: zone-a: server s1 is not the server assigned to alice (s2)"; len(failed) != 1 || failed[0] != want {
		t.Fatalf("failed %q, want %q", failed, want)
	}
}

func TestServerLabelsDecideWhereSessionsGo(t *testing.T) {
	e := newEnv(t, envOptions{})
	p := e.newServerPool(10, startListener(t).addr)
	e.exec(`UPDATE pools SET labels = '{rdp}' WHERE id = $1`, p.poolID)
	e.addServer(p.zoneID, p.poolID, "gpu1", startListener(t).addr, 10, "gpu")
	e.addServer(p.zoneID, p.poolID, "gpu2", startListener(t).addr, 10, "gpu", "spot")

	// The pool's label counts as every server's own.
	e.exec(`UPDATE workspaces SET include_labels = '{gpu,rdp}', exclude_labels = '{spot}' WHERE id = $1`, p.workspaceID)
	if ready, failed := e.requestAll(p.fixture, 3); len(ready) != 3 {
		t.Fatalf("failed %v", failed)
	}
	if got := e.liveOn(); got["gpu1"] != 3 || got["s1"] != 0 || got["gpu2"] != 0 {
		t.Fatalf("sessions per server = %v, want all 3 on gpu1", got)
	}
	e.exec(`UPDATE workspaces SET include_labels = '{gpu}', exclude_labels = '{rdp}' WHERE id = $1`, p.workspaceID)
	_, failed := e.requestAll(p.fixture, 1)
	want := "no_capacity: no server of pool rdp can take the session: zone-a: server gpu1 has excluded label rdp, server gpu2 has excluded label rdp, server s1 lacks label gpu"
	if len(failed) != 1 || failed[0] != want {
		t.Fatalf("failed %q, want %q", failed, want)
	}
}

// Placements race only in the database: 20 goroutines place 40 sessions at
// once on 3 servers of 10, straight through the store (as replicas of the
// provisioner would), and exactly 30 get a place, never more than 10 on a
// server.
func TestConcurrentServerPlacementsNeverExceedMaxSessions(t *testing.T) {
	e := newEnv(t, envOptions{noService: true})
	p := e.newServerPool(10, startListener(t).addr, startListener(t).addr, startListener(t).addr)
	store := postgres.New(e.db, "greenroom/test")
	reached := map[string]string{}
	for _, id := range p.servers {
		reached[id] = ""
	}
	ids := make([]string, 40)
	for i := range ids {
		ids[i], _ = e.requestOnDemand(p.fixture, []string{p.zone}, events.Permissions{})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	placed, full := 0, 0
	next := make(chan string)
	for range 20 {
		wg.Go(func() {
			for id := range next {
				_, failure, err := store.PlaceOnServer(e.ctx, id, domain.OnDemandZoneSearch(p.zone, []string{p.zone}), reached)
				mu.Lock()
				switch {
				case err != nil && !errors.Is(err, command.ErrNotProvisioning):
					t.Errorf("placing %s: %v", id, err)
				case failure != nil && failure.Reason == events.ReasonNoCapacity:
					full++
				case err == nil && failure == nil:
					placed++
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	if placed != 30 || full != 10 {
		t.Fatalf("placed %d, refused %d; want 30 and 10", placed, full)
	}
	if got := e.liveOn(); got["s1"] != 10 || got["s2"] != 10 || got["s3"] != 10 {
		t.Fatalf("sessions per server = %v, want 10 each", got)
	}
}
