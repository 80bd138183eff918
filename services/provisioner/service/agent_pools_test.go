package service_test

import (
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// agentPool puts three agent rows, all on the local engine, in zone-a: a1
// and a2 in the Docker agent pool "gpu" (pool label gpu; a2 also has its
// own label spot), a3 in no pool.
func (e *env) agentPool(ws workspaceOptions) fixture {
	f := fixture{zone: "zone-a", agent: "a1", wsName: "demo", user: "alice"}
	f.zoneID = e.addZone(f.zone, "least_load")
	pool := e.addAgentPool("gpu", "gpu")
	f.agentID = e.addAgent(f.zoneID, "a1", 4, 4096)
	a2 := e.addAgent(f.zoneID, "a2", 2, 2048)
	e.addAgent(f.zoneID, "a3", 4, 4096)
	e.exec(`UPDATE agents SET pool_id = $1 WHERE id IN ($2, $3)`, pool, f.agentID, a2)
	e.exec(`UPDATE agents SET labels = '{spot}' WHERE id = $1`, a2)
	f.workspaceID = e.addWorkspace(f.wsName, ws)
	f.userID = e.addUser(f.user)
	return f
}

func (e *env) addAgentPool(name string, labels ...string) string {
	id := e.addServerPool(name, false, labels...)
	e.exec(`UPDATE pools SET type = 'docker_agent' WHERE id = $1`, id)
	return id
}

func (e *env) setLabels(workspaceID string, include, exclude []string) {
	e.exec(`UPDATE workspaces SET include_labels = $2, exclude_labels = $3 WHERE id = $1`,
		workspaceID, pq.Array(append([]string{}, include...)), pq.Array(append([]string{}, exclude...)))
}

func TestWorkspaceLabelsPickTheAgentsOfStagedAndOnDemandSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.agentPool(workspaceOptions{initDelay: "0s", cores: 0.5, memoryMB: 64})

	// Staged: gpu comes from the pool, so a1 and a2 have it; spot rules
	// out a2. All four go to a1.
	e.setLabels(f.workspaceID, []string{"gpu"}, []string{"spot"})
	cfg := e.addStagingConfig(f, 4, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	e.waitFor("4 staged sessions", 30*time.Second, func() bool { return len(e.poolStaged(cfg)) == 4 })
	if per := e.poolContainersPerAgent(cfg); per["a1"] != 4 {
		t.Errorf("staged containers per agent %v, want all 4 on a1", per)
	}

	// On demand: gpu without the exclusion spreads over a1 and a2 (least
	// load: a1's 4 cores less the 2 of its staged sessions against a2's 2,
	// ties to the name), never a3.
	e.setLabels(f.workspaceID, []string{"gpu"}, nil)
	on := map[string]int{}
	for range 4 {
		id, _ := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
		e.waitFor("the session running", 30*time.Second, func() bool { return e.session(id).Status == sessions.Running })
		var agent string
		if err := e.db.GetContext(e.ctx, &agent, `SELECT a.name FROM sessions s JOIN agents a ON a.id = s.agent_id WHERE s.id = $1`, id); err != nil {
			t.Fatal(err)
		}
		on[agent]++
	}
	if on["a1"] != 2 || on["a2"] != 2 || on["a3"] != 0 {
		t.Errorf("on-demand sessions per agent %v, want 2 on a1, 2 on a2, none on a3", on)
	}
}

func TestWhenNoAgentHasTheLabelsTheStatusAndTheFailureSayWhich(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.agentPool(workspaceOptions{initDelay: "0s"})
	e.setLabels(f.workspaceID, []string{"gpu"}, []string{"spot", "gpu"})
	want := "zone-a: agent a1 has excluded label gpu, agent a2 has excluded label spot, agent a3 lacks label gpu"

	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	ev := e.waitEvent(events.TypeStagingShortfall, 10*time.Second, dataIs("staging_config_id", cfg))
	if d := decode[events.StagingShortfall](t, ev); d.Reason != "no_capacity: "+want {
		t.Errorf("staging.shortfall reason %q, want %q", d.Reason, "no_capacity: "+want)
	}
	if c := e.poolConfig(cfg); c.Status != "shortfall" || c.LastError != "no_capacity: "+want {
		t.Errorf("staging config %s: %q, want shortfall: %q", c.Status, c.LastError, "no_capacity: "+want)
	}

	id, _ := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	ev = e.waitEvent(events.TypeSessionFailed, 10*time.Second, dataIs("session_id", id))
	if d := decode[events.SessionFailed](t, ev); d.Reason != events.ReasonNoCapacity || d.Detail != want {
		t.Errorf("session.failed = %s: %q, want no_capacity: %q", d.Reason, d.Detail, want)
	}
}
