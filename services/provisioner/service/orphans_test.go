package service_test

import (
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// TestOrphanContainerIsReapedAfterGracePeriod: a container labelled
// greenroom.managed=true whose session has no row, or is failed or
// destroyed, is removed once it is older than the grace period, and not
// before; a container of a live session, and one without a session
// label, stay. Each removal is announced (container.removed, cause
// orphan), once.
func TestOrphanContainerIsReapedAfterGracePeriod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noService: true})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	const grace = 5 * time.Second
	reaper, reg := e.newAuditorWithRegistry(grace, nil)

	live := e.sessionWithContainer(f, "", sessions.Running, neverExisted())
	liveContainer := e.managedContainer(live, true)
	e.exec(`UPDATE sessions SET container_id = $2 WHERE id = $1`, live, liveContainer)
	unlabelled := e.startContainer()
	keep := []string{liveContainer, unlabelled}

	// Every pass checks that no orphan went before it was grace old (by
	// its creation time as the engine recorded it) and that the others
	// stayed.
	created := map[string]time.Time{}
	early := map[string]int{} // passes that ended within its grace period, leaving it
	gone := map[string]bool{}
	removed := 0
	pass := func() {
		t.Helper()
		res, err := reaper.RunOnce(e.ctx)
		ended := time.Now()
		if err != nil {
			t.Errorf("RunOnce: %v", err)
		}
		removed += res.OrphansRemoved
		for id, at := range created {
			switch exists := e.containerExists(id); {
			case !exists && !gone[id] && ended.Before(at.Add(grace)):
				t.Errorf("orphan %s removed %s after it was created, before the grace period of %s", id[:12], ended.Sub(at), grace)
			case !exists:
				gone[id] = true
			case ended.Before(at.Add(grace)):
				early[id]++
			}
		}
		for _, id := range keep {
			if !e.containerExists(id) {
				t.Fatalf("container %s was removed; it is not an orphan", id[:12])
			}
		}
	}
	orphan := func(id string) {
		in, err := e.inspect(id)
		if err != nil {
			t.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339Nano, in.Created)
		if err != nil {
			t.Fatal(err)
		}
		created[id] = at
		pass()
	}
	noRow := uuid.NewString()
	orphan(e.managedContainer(noRow, true))
	failed := e.sessionWithContainer(f, "", sessions.Running, neverExisted())
	orphan(e.managedContainer(failed, true))
	e.endSession(failed, sessions.Failed)
	pass()
	destroyed := e.sessionWithContainer(f, "", sessions.Running, neverExisted())
	e.endSession(destroyed, sessions.Destroyed)
	orphan(e.managedContainer(destroyed, false))

	e.waitFor("the orphans removed", grace+20*time.Second, func() bool { pass(); return len(gone) == len(created) })
	for id := range created {
		if early[id] == 0 {
			t.Errorf("no pass ran within the grace period of %s; making the containers took too long to check it", id[:12])
		}
	}
	if removed != len(created) {
		t.Errorf("%d orphans removed, want %d", removed, len(created))
	}
	if s := e.session(live); s.Status != sessions.Running {
		t.Errorf("live session is %s, want running", s.Status)
	}
	// No relay runs here: the announcements wait in the outbox.
	if got, want := e.outboxEvents(events.TypeContainerRemoved), map[string]int{noRow: 1, failed: 1, destroyed: 1}; !maps.Equal(got, want) {
		t.Errorf("container.removed by session %v, want one for each orphan %v", got, want)
	}
	var agents []string
	if err := e.db.SelectContext(e.ctx, &agents, `SELECT payload->'data'->>'agent' FROM outbox WHERE payload->>'type' = $1`,
		events.TypeContainerRemoved); err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if a != "agent-a1" {
			t.Errorf("container.removed names agent %q, want the container's label agent-a1", a)
		}
	}
	if n := apptest.MustMetric(t, reg, "greenroom_provisioner_orphan_containers_removed_total", nil); n != float64(len(created)) {
		t.Errorf("orphan counter = %v, want %d", n, len(created))
	}
}

// TestContainerOfAFreshSessionIsNotReaped: a container just created is
// never reaped before its row commits. Greenroom commits the session's
// row before it creates the container, so however often the collector
// runs, and with no grace period, a container being provisioned is never
// an orphan; and the grace period covers a row not committed yet.
func TestContainerOfAFreshSessionIsNotReaped(t *testing.T) {
	t.Parallel()
	t.Run("sessions being provisioned", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: service.Config{ContainerAudit: audit.ContainerAuditorConfig{
			Interval: 10 * time.Millisecond, GracePeriod: -1,
		}}})
		f := e.standardFixture(workspaceOptions{initDelay: "200ms"})
		cfg := e.addStagingConfig(f, 3, events.Permissions{})
		e.svc.Reconciler.Trigger(cfg)
		var requests []string
		for range 3 {
			_, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
			requests = append(requests, rid)
		}
		for _, rid := range requests {
			e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
		}
		e.waitFor("3 staged sessions", 120*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 3 })
		// Passes that began after every container was made.
		for range 3 {
			e.svc.ContainerAuditor.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second)
		}
		if n := e.counter("greenroom_provisioner_orphan_containers_removed_total", nil); n != 0 {
			t.Errorf("%v containers of fresh sessions reaped", n)
		}
		if n := e.countEvents(events.TypeSessionFailed, nil); n != 0 {
			t.Errorf("%d sessions failed", n)
		}
		if n := len(e.containers(nil)); n != 6 {
			t.Errorf("%d containers, want 6", n)
		}
	})
	t.Run("row not committed yet", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{noService: true})
		f := e.standardFixture(workspaceOptions{initDelay: "0s"})
		tx, err := e.db.BeginTxx(e.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		id := e.insertSession(tx, f)
		c := e.managedContainer(id, true)

		res, err := e.newAuditor(audit.ContainerAuditorGracePeriodDefault, nil).RunOnce(e.ctx)
		if err != nil || res.OrphansRemoved != 0 || !e.containerExists(c) {
			t.Fatalf("pass before the row committed = %+v (err %v), want nothing removed", res, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		res, err = e.newAuditor(-1, nil).RunOnce(e.ctx)
		if err != nil || res.OrphansRemoved != 0 || !e.containerExists(c) {
			t.Fatalf("pass after the row committed = %+v (err %v), want nothing removed", res, err)
		}
		// Its session, and nothing else, kept it: once that ends, it goes.
		e.endSession(id, sessions.Failed)
		res, err = e.newAuditor(-1, nil).RunOnce(e.ctx)
		if err != nil || res.OrphansRemoved != 1 || e.containerExists(c) {
			t.Errorf("pass after the session failed = %+v (err %v), want its container removed", res, err)
		}
	})
}

// TestOnlyOneReplicaReapsAtATime: replicas run their passes at the same
// time; each orphan is removed, and counted, once, without errors.
func TestOnlyOneReplicaReapsAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noService: true})
	e.standardFixture(workspaceOptions{initDelay: "0s"})
	var orphans []string
	for i := range 8 {
		orphans = append(orphans, e.managedContainer(uuid.NewString(), i%2 == 0))
	}
	a1, reg1 := e.newAuditorWithRegistry(-1, nil)
	a2, reg2 := e.newAuditorWithRegistry(-1, nil)

	var mu sync.Mutex
	var total audit.AuditResult
	var wg sync.WaitGroup
	for _, a := range []*audit.ContainerAuditor{a1, a2, a1, a2, a1, a2} {
		wg.Go(func() {
			res, err := a.RunOnce(e.ctx)
			if err != nil {
				t.Errorf("RunOnce: %v", err)
			}
			mu.Lock()
			total.OrphansRemoved += res.OrphansRemoved
			total.ReapHeld += res.ReapHeld
			mu.Unlock()
		})
	}
	wg.Wait()

	if total.OrphansRemoved != len(orphans) {
		t.Errorf("6 passes over 2 replicas removed %d orphans, want %d", total.OrphansRemoved, len(orphans))
	}
	for _, id := range orphans {
		if e.containerExists(id) {
			t.Errorf("orphan container %s is still there", id[:12])
		}
	}
	if n := apptest.MustMetric(t, reg1, "greenroom_provisioner_orphan_containers_removed_total", nil) +
		apptest.MustMetric(t, reg2, "greenroom_provisioner_orphan_containers_removed_total", nil); n != float64(len(orphans)) {
		t.Errorf("orphan counters add up to %v, want %d", n, len(orphans))
	}
	t.Logf("passes that found another replica reaping: %d of 6", total.ReapHeld)
}

// insertSession inserts an on-demand session placed on f's agent, in
// status provisioning, in tx.
func (e *env) insertSession(tx *sqlx.Tx, f fixture) string {
	e.t.Helper()
	id := uuid.NewString()
	if _, err := sessions.Insert(e.ctx, tx, sessions.New{ID: id, RequestID: "req-" + id, WorkspaceID: f.workspaceID,
		ZoneID: f.zoneID, AgentID: f.agentID, UserID: f.userID, Origin: sessions.OriginOnDemand, Cores: 0.1, MemoryMB: 16}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// endSession moves a live session to failed, or through destroying to
// destroyed.
func (e *env) endSession(id string, to sessions.Status) {
	e.t.Helper()
	from := e.session(id).Status
	if to == sessions.Destroyed {
		if _, err := sessions.Transition(e.ctx, e.db, id, from, sessions.Destroying, sessions.Change{}); err != nil {
			e.t.Fatal(err)
		}
		from = sessions.Destroying
	}
	if _, err := sessions.Transition(e.ctx, e.db, id, from, to, sessions.Change{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) containerExists(id string) bool {
	e.t.Helper()
	for _, c := range e.containers(map[string]string{domain.LabelManaged: "true"}) {
		if c.ID == id {
			return true
		}
	}
	return false
}
