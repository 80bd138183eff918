package service_test

import (
	"database/sql"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/nettest"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// startBlackHole is a Docker endpoint that accepts connections and never
// answers (an engine that hangs), closed when the test ends.
func startBlackHole(t *testing.T) *nettest.BlackHole {
	t.Helper()
	b, err := nettest.ListenBlackHole()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// refusedEndpoint is a Docker endpoint nothing listens on: an engine that
// is down.
func refusedEndpoint(t *testing.T) string {
	t.Helper()
	endpoint, err := nettest.RefusedEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	return endpoint
}

func (e *env) addAgentAt(zoneID, name, endpoint string, cores float64, memoryMB int) string {
	id := uuid.NewString()
	e.exec(`INSERT INTO agents (id, name, zone_id, docker_endpoint, cores, memory_mb) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, name, zoneID, endpoint, cores, memoryMB)
	return id
}

// unreachableSince matches the reason placement gives for an agent whose
// engine is known to be down.
func unreachableSince(agent string) *regexp.Regexp {
	return regexp.MustCompile(`agent ` + regexp.QuoteMeta(agent) +
		` engine unreachable: .+? \(since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)`)
}

// Issue (reliability): placement passes over the agents whose Docker
// engine does not answer. Beside an agent on the real engine, one zone has
// a bigger agent whose engine hangs (a black hole) and another whose
// engine refuses connections; least_load prefers both. Once the engine
// watcher found them down, on-demand sessions and a staging pool's are
// all made on the healthy agent, none fails; with the healthy agent
// disabled, a request fails as no_capacity saying why each agent was
// passed over.
func TestPlacementSkipsAgentsWhoseEngineIsUnreachable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: service.Config{
		// A hanging engine is found down after 2 s rather than 10.
		Engines:       docker.EnginesConfig{PingTimeout: 2 * time.Second},
		EngineWatcher: audit.EngineWatcherConfig{PingTimeout: 2 * time.Second},
	}})
	hangs, refuses := startBlackHole(t).Endpoint(), refusedEndpoint(t)
	f := fixture{zone: "zone-a", agent: "agent-healthy", wsName: "demo", user: "alice"}
	f.zoneID = e.addZone(f.zone, "least_load")
	e.addAgentAt(f.zoneID, "agent-hangs", hangs, 16, 16384)
	e.addAgentAt(f.zoneID, "agent-refuses", refuses, 8, 8192)
	f.agentID = e.addAgent(f.zoneID, f.agent, 4, 4096)
	f.workspaceID = e.addWorkspace(f.wsName, workspaceOptions{cores: 0.5, memoryMB: 64, initDelay: "0s"})
	f.userID = e.addUser(f.user)

	// What a config.changed of an agent does: the watcher reads the
	// agents again and tries their engines.
	e.svc.EngineWatcher.Trigger()
	start := time.Now()
	e.waitFor("both broken engines to be known down", 60*time.Second, func() bool {
		return e.svc.EngineHealth.Outage(hangs) != nil && e.svc.EngineHealth.Outage(refuses) != nil
	})
	t.Logf("engines found down after %s: hanging one %+v; refusing one %+v", time.Since(start).Round(time.Millisecond),
		*e.svc.EngineHealth.Outage(hangs), *e.svc.EngineHealth.Outage(refuses))
	// Each agent's heartbeat is its engine's last answer to a ping: the
	// healthy one has one, the broken ones none.
	e.waitFor("the healthy agent's heartbeat", 30*time.Second, func() bool {
		var beat sql.NullTime
		_ = e.db.GetContext(e.ctx, &beat, `SELECT last_heartbeat_at FROM agents WHERE id = $1`, f.agentID)
		return beat.Valid && time.Since(beat.Time) < time.Minute
	})
	var beating []string
	if err := e.db.SelectContext(e.ctx, &beating, `SELECT name FROM agents WHERE last_heartbeat_at IS NOT NULL ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	if len(beating) != 1 || beating[0] != f.agent {
		t.Errorf("agents with a heartbeat: %v, want only %s", beating, f.agent)
	}

	// On-demand sessions go to the healthy agent.
	requests := map[string]string{}
	for range 3 {
		req := e.insertOnDemand(f)
		e.deliverRequest(req)
		requests[req.SessionID] = req.RequestID
	}
	start = time.Now()
	for sid, rid := range requests {
		ready := decode[events.SessionReady](t, e.waitEvent(events.TypeSessionReady, 60*time.Second, dataIs("request_id", rid)))
		if ready.SessionID != sid || ready.Agent != f.agent {
			t.Errorf("session.ready = %+v, want session %s on %s", ready, sid, f.agent)
		}
		if s := e.session(sid); s.Status != sessions.Running || s.AgentID.String != f.agentID {
			t.Errorf("session %s is %s on agent %v, want running on %s", sid, s.Status, s.AgentID, f.agentID)
		}
	}
	t.Logf("3 on-demand sessions ready on the healthy agent in %s", time.Since(start).Round(time.Millisecond))
	if n := e.countEvents(events.TypeSessionFailed, nil); n != 0 {
		t.Errorf("%d session.failed events, want none", n)
	}

	// So do a staging pool's.
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 60*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
	var stagedOn []string
	if err := e.db.SelectContext(e.ctx, &stagedOn, `SELECT agent_id FROM sessions WHERE staging_config_id = $1 AND status = 'staged'`, cfg); err != nil {
		t.Fatal(err)
	}
	if len(stagedOn) != 1 || stagedOn[0] != f.agentID {
		t.Errorf("staged sessions on agents %v, want one on %s", stagedOn, f.agentID)
	}
	// The pass after the session was staged writes the status.
	e.waitFor("staging config status ok", 30*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	if n := e.countEvents(events.TypeSessionFailed, nil); n != 0 {
		t.Errorf("%d session.failed events, want none", n)
	}

	// With the healthy agent disabled, nothing is left: the failure says
	// why each agent was passed over.
	e.exec(`UPDATE agents SET enabled = false WHERE id = $1`, f.agentID)
	req := e.insertOnDemand(f)
	e.deliverRequest(req)
	failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 60*time.Second, dataIs("request_id", req.RequestID)))
	t.Logf("no capacity: %s", failed.Detail)
	if failed.Reason != events.ReasonNoCapacity {
		t.Errorf("session.failed reason %q, want %s", failed.Reason, events.ReasonNoCapacity)
	}
	for _, agent := range []string{"agent-hangs", "agent-refuses"} {
		if !unreachableSince(agent).MatchString(failed.Detail) {
			t.Errorf("session.failed detail %q does not say %s's engine is unreachable, and since when", failed.Detail, agent)
		}
	}
}
