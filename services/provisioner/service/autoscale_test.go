package service_test

// The autoscaler against real machines (issue 17): each new agent is a
// container running Debian's dockerd (scripts/build-agent-image.sh),
// reached over tcp:// with the certificates its VM provider's CA signed,
// the demo image copied into it from this host's engine before it takes
// sessions.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/pki"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/dns/rfc2136"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm/local"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/internal/dnstest"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// addVMProvider stores a local_docker VM provider, with a certificate
// authority of its own as the config service makes one, whose machines
// have cores and memoryMB.
func (e *env) addVMProvider(name string, cores float64, memoryMB int) string {
	e.t.Helper()
	caCert, caKey, err := pki.NewCA("test vm provider " + name)
	if err != nil {
		e.t.Fatal(err)
	}
	cert, key, err := pki.Issue(caCert, caKey, pki.Client, "greenroom-provisioner", nil, nil, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	id := uuid.NewString()
	e.exec(`INSERT INTO vm_providers (id, name, type, settings, tls_ca_cert, tls_ca_key, tls_client_cert, tls_client_key)
		VALUES ($1, $2, 'local_docker', $3, $4, $5, $6, $7)`, id, name,
		fmt.Sprintf(`{"cores": %g, "memory_mb": %d, "network": %q}`, cores, memoryMB, "greenroom-test-agents"),
		string(caCert), string(caKey), string(cert), string(key))
	return id
}

// agentRow is an agent as these tests read it.
type agentRow struct {
	ID        string `db:"id"`
	Name      string `db:"name"`
	Lifecycle string `db:"lifecycle"`
	Endpoint  string `db:"docker_endpoint"`
	MachineID string `db:"machine_id"`
	Address   string `db:"internal_address"`
	Sessions  int    `db:"sessions"`
	Error     string `db:"lifecycle_error"`
}

// autoscaledAgents lists the agents autoscale config id made, oldest first
// (deleted ones too, which no longer name it: by pool).
func (e *env) autoscaledAgents(poolID string) []agentRow {
	e.t.Helper()
	var rows []agentRow
	if err := e.db.SelectContext(e.ctx, &rows, `SELECT a.id, a.name, a.lifecycle, a.docker_endpoint, a.machine_id, a.internal_address, a.lifecycle_error,
			(SELECT count(*) FROM sessions s WHERE s.agent_id = a.id AND s.status NOT IN ('destroyed', 'failed')) AS sessions
		FROM agents a WHERE a.pool_id = $1 OR (a.lifecycle = 'deleted' AND a.name LIKE 'scaled-%')
		ORDER BY a.created_at, a.name`, poolID); err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// lifecycleOf returns the greenroom.agent.lifecycle events of agent name
// on the bus, in the order they came, and their steps ("from→to", from
// empty for a new agent).
func (e *env) lifecycleOf(name string) ([]events.AgentLifecycle, []string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	var ls []events.AgentLifecycle
	var steps []string
	for _, ev := range e.events {
		if ev.Type != events.TypeAgentLifecycle {
			continue
		}
		if err := e.deps.Validator.ValidateEvent(ev); err != nil {
			e.t.Errorf("agent.lifecycle does not match its schema: %v", err)
		}
		if l := decode[events.AgentLifecycle](e.t, ev); l.Agent == name {
			ls = append(ls, l)
			steps = append(steps, l.From+"→"+l.To)
		}
	}
	return ls, steps
}

// waitLifecycle waits until agent name's step to lifecycle to is on the
// bus.
func (e *env) waitLifecycle(name, to string) {
	e.t.Helper()
	e.waitEvent(events.TypeAgentLifecycle, 30*time.Second, func(d map[string]any) bool { return d["agent"] == name && d["to"] == to })
}

// removeMachines removes the machines (containers and volumes) of this
// test, whatever the autoscaler left.
func (e *env) removeMachines() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	list, err := e.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
		Add("label", "greenroom.machine", testLabel+"="+e.label)})
	if err != nil {
		e.t.Errorf("listing test machines: %v", err)
		return
	}
	for _, c := range list.Items {
		if _, err := e.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			e.t.Errorf("removing test machine %s: %v", c.ID[:12], err)
		}
		if name := c.Labels["greenroom.machine"]; name != "" {
			_, _ = e.docker.VolumeRemove(ctx, "greenroom-machine-"+name, client.VolumeRemoveOptions{Force: true})
		}
	}
}

func TestAPoolScalesItsAgentsUpAndDownWithRealMachines(t *testing.T) {
	if _, err := local.New(local.Config{}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{cfg: service.Config{
		Autoscale:     autoscale.Config{Interval: 500 * time.Millisecond, BootTimeout: 3 * time.Minute},
		EngineWatcher: audit.EngineWatcherConfig{Heartbeat: 500 * time.Millisecond, PingTimeout: time.Second, BackoffMax: 2 * time.Second},
	}})
	t.Cleanup(e.removeMachines)
	zoneID := e.addZone("zone-a", "least_load")
	poolID := uuid.NewString()
	e.exec(`INSERT INTO pools (id, name, type) VALUES ($1, 'scaled', 'docker_agent')`, poolID)
	vmID := e.addVMProvider("local", 2, 1024)
	wsID := e.addWorkspace("demo", workspaceOptions{cores: 1, memoryMB: 64, initDelay: "0s"})
	cfgID := uuid.NewString()
	// Two cores free at all times; agents of two cores; at most three;
	// a second of downscale backoff.
	// Each agent gets an A record from a real BIND on loopback.
	ns := dnstest.Start(t)
	dnsID := uuid.NewString()
	e.exec(`INSERT INTO dns_providers (id, name, type, settings, secrets) VALUES ($1, 'bind', 'rfc2136', $2, $3)`, dnsID,
		fmt.Sprintf(`{"server": %q, "zone": %q, "tsig_key_name": %q, "tsig_algorithm": %q}`, ns.Addr, ns.Zone, ns.KeyName, ns.KeyAlgorithm),
		fmt.Sprintf(`{"tsig_secret": %q}`, ns.Secret))
	resolver, err := rfc2136.New(rfc2136.Config{Server: ns.Addr, Zone: ns.Zone, TSIGKeyName: ns.KeyName, TSIGAlgorithm: ns.KeyAlgorithm, TSIGSecret: ns.Secret})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(name string) []netip.Addr {
		addrs, err := resolver.Lookup(e.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return addrs
	}
	e.exec(`INSERT INTO autoscale_configs (id, name, pool_id, zone_id, standby_cores, max_agents, vm_provider_id, dns_provider_id,
			downscale_backoff)
		VALUES ($1, 'scaled', $2, $3, 1, 3, $4, $5, '2 seconds')`, cfgID, poolID, zoneID, vmID, dnsID)
	f := fixture{zoneID: zoneID, zone: "zone-a", workspaceID: wsID, wsName: "demo"}

	// No agent, one core of standby: the first agent.
	start := time.Now()
	e.waitFor("a first active agent", 4*time.Minute, func() bool {
		as := e.autoscaledAgents(poolID)
		return len(as) == 1 && as[0].Lifecycle == "active"
	})
	first := e.autoscaledAgents(poolID)[0]
	t.Logf("decision → first agent active: %s (%s, machine %s)", time.Since(start).Round(time.Millisecond), first.Endpoint, first.MachineID[:12])
	if !strings.HasPrefix(first.Endpoint, "tcp://") || !strings.HasSuffix(first.Endpoint, ":2376") {
		t.Errorf("agent endpoint %q is not the machine's TLS port", first.Endpoint)
	}
	if got := lookup(first.Name); len(got) != 1 || "tcp://"+got[0].String()+":2376" != first.Endpoint {
		t.Errorf("the A record of %s is %v, want the address of %s", first.Name, got, first.Endpoint)
	}
	// The log says so: made on the decision, with its reason; active
	// once up, with its machine.
	e.waitLifecycle(first.Name, events.AgentActive)
	ls, steps := e.lifecycleOf(first.Name)
	if want := []string{"→provisioning", "provisioning→active"}; !slices.Equal(steps, want) {
		t.Fatalf("agent.lifecycle steps of %s: %q, want %q", first.Name, steps, want)
	}
	for _, l := range ls {
		if l.AgentID != first.ID || l.AutoscaleConfig != "scaled" || l.Reason == "" {
			t.Errorf("agent.lifecycle %+v, want agent id %s, config scaled and a reason", l, first.ID)
		}
	}
	if ls[0].MachineID != "" || ls[0].Address != "" {
		t.Errorf("agent.lifecycle to provisioning names machine %q at %q before it exists", ls[0].MachineID, ls[0].Address)
	}
	if ls[1].MachineID != first.MachineID || ls[1].Address != first.Address || first.Address == "" {
		t.Errorf("agent.lifecycle to active names machine %q at %q, want the row's %q at %q",
			ls[1].MachineID, ls[1].Address, first.MachineID, first.Address)
	}

	// A pool of two sessions of a core each fills it: a second agent.
	sc := e.addStagingConfig(f, 2, events.Permissions{})
	e.poolConfigChanged(sc, "created")
	e.waitFor("2 staged sessions", 4*time.Minute, func() bool { return len(e.poolStaged(sc)) == 2 })
	e.waitFor("a second active agent", 4*time.Minute, func() bool {
		as := e.autoscaledAgents(poolID)
		return len(as) == 2 && as[1].Lifecycle == "active"
	})
	// Three sessions: the third lands on the second agent.
	e.exec(`UPDATE staging_configs SET desired_sessions = 3 WHERE id = $1`, sc)
	e.poolConfigChanged(sc, "updated")
	e.waitFor("3 staged sessions", 4*time.Minute, func() bool { return len(e.poolStaged(sc)) == 3 })
	as := e.autoscaledAgents(poolID)
	if as[0].Sessions+as[1].Sessions != 3 || as[1].Sessions == 0 {
		t.Errorf("sessions per agent: %+v", as)
	}
	for _, s := range e.poolStaged(sc) {
		if code, body := httpGet(t, strings.TrimSuffix(s.UpstreamURL, "/")+"/healthz"); code != 200 {
			t.Errorf("staged session %s on a machine does not answer: %d %q", s.ID, code, body)
		}
	}

	// Empty the pool: past the backoff one agent drains and goes; the
	// other stays, as without it the standby would be short.
	e.exec(`UPDATE staging_configs SET desired_sessions = 0 WHERE id = $1`, sc)
	e.poolConfigChanged(sc, "updated")
	start = time.Now()
	e.waitFor("one agent deleted", 3*time.Minute, func() bool {
		n := 0
		for _, a := range e.autoscaledAgents(poolID) {
			if a.Lifecycle == "deleted" {
				n++
			}
		}
		return n == 1
	})
	t.Logf("pool emptied → one agent drained and deleted: %s", time.Since(start).Round(time.Millisecond))
	// The log has the deleted agent's whole life, each step from where
	// the one before left it: made, active, then drained (perhaps taken
	// back and drained again), deleting on the decision that deleted it,
	// and deleted.
	var deleted agentRow
	for _, a := range e.autoscaledAgents(poolID) {
		if a.Lifecycle == "deleted" {
			deleted = a
		}
	}
	e.waitLifecycle(deleted.Name, events.AgentDeleted)
	ls, steps = e.lifecycleOf(deleted.Name)
	n := len(steps)
	if n < 5 || !slices.Equal(steps[:2], []string{"→provisioning", "provisioning→active"}) ||
		!slices.Equal(steps[n-3:], []string{"active→draining", "draining→deleting", "deleting→deleted"}) {
		t.Fatalf("agent.lifecycle steps of the deleted agent %s: %q, want made, active, …, draining, deleting, deleted", deleted.Name, steps)
	}
	for i, l := range ls {
		if l.AgentID != deleted.ID || l.AutoscaleConfig != "scaled" || l.Reason == "" {
			t.Errorf("agent.lifecycle %+v, want agent id %s, config scaled and a reason", l, deleted.ID)
		}
		if i > 0 && l.From != ls[i-1].To {
			t.Errorf("agent.lifecycle steps of %s %q: step %d leaves %q, the one before entered %q", deleted.Name, steps, i, l.From, ls[i-1].To)
		}
	}
	// The decision that deleted it said why (the config's last_decision
	// has moved on by now: the loop decides every half second).
	if !strings.HasPrefix(ls[n-2].Reason, "drained since ") || !strings.HasSuffix(ls[n-2].Reason, "with no session left") {
		t.Errorf("agent.lifecycle to deleting says %q, want the delete decision's reason", ls[n-2].Reason)
	}
	if last := ls[n-1]; last.MachineID != deleted.MachineID || last.Address != deleted.Address || deleted.MachineID == "" {
		t.Errorf("agent.lifecycle to deleted names machine %q at %q, want the row's %q at %q",
			last.MachineID, last.Address, deleted.MachineID, deleted.Address)
	}
	for _, a := range e.autoscaledAgents(poolID) {
		want := 1
		if a.Lifecycle == "deleted" {
			want = 0
		}
		if got := lookup(a.Name); len(got) != want {
			t.Errorf("agent %s (%s) has A records %v, want %d", a.Name, a.Lifecycle, got, want)
		}
	}

	// The agent left stops answering (its dockerd frozen, its event
	// stream open): no placements, and the pool's shortfall names it
	// (max_agents 1: no other agent is made meanwhile); thawed, it takes
	// the session by itself.
	e.exec(`UPDATE autoscale_configs SET max_agents = 1, min_agents = 1 WHERE id = $1`, cfgID)
	var survivor agentRow
	for _, a := range e.autoscaledAgents(poolID) {
		if a.Lifecycle == "active" {
			survivor = a
		}
	}
	if _, err := e.docker.ContainerPause(e.ctx, survivor.MachineID, client.ContainerPauseOptions{}); err != nil {
		t.Fatal(err)
	}
	unpause := func() {
		_, _ = e.docker.ContainerUnpause(context.Background(), survivor.MachineID, client.ContainerUnpauseOptions{})
	}
	t.Cleanup(unpause)
	e.waitFor("the frozen agent reported down", time.Minute, func() bool { return e.svc.EngineHealth.Outage(survivor.Endpoint) != nil })
	e.exec(`UPDATE staging_configs SET desired_sessions = 1 WHERE id = $1`, sc)
	e.poolConfigChanged(sc, "updated")
	e.waitFor("a shortfall naming the agent", time.Minute, func() bool {
		var st struct {
			Status string `db:"status"`
			Error  string `db:"last_error"`
		}
		if err := e.db.Get(&st, `SELECT status, last_error FROM staging_configs WHERE id = $1`, sc); err != nil {
			t.Fatal(err)
		}
		return st.Status == "shortfall" && strings.Contains(st.Error, survivor.Name)
	})
	if n := e.autoscaledAgents(poolID)[0].Sessions + len(e.poolStaged(sc)); n != 0 {
		t.Errorf("%d sessions placed while the only agent was down", n)
	}
	unpause()
	e.waitFor("the session staged once the agent answers again", 3*time.Minute, func() bool { return len(e.poolStaged(sc)) == 1 })
}

// storeAutoscaleFixture is a zone, a docker_agent pool with no agent and
// an autoscale config of it (a core of standby, at most 3 agents of 2
// cores, local provider) for the store-level tests, with the store and
// what its Decide needs.
func (e *env) storeAutoscaleFixture() (poolID, cfgID string, store *postgres.Store, in autoscale.DecideInput) {
	e.t.Helper()
	zoneID := e.addZone("zone-a", "least_load")
	poolID = uuid.NewString()
	e.exec(`INSERT INTO pools (id, name, type) VALUES ($1, 'scaled', 'docker_agent')`, poolID)
	vmID := e.addVMProvider("local", 2, 1024)
	cfgID = uuid.NewString()
	e.exec(`INSERT INTO autoscale_configs (id, name, pool_id, zone_id, standby_cores, max_agents, vm_provider_id)
		VALUES ($1, 'scaled', $2, $3, 1, 3, $4)`, cfgID, poolID, zoneID, vmID)
	store = postgres.New(e.db, "greenroom/provisioner")
	in = autoscale.DecideInput{Size: vm.Providers{}.Size, Decide: domain.DecideScale, RetryAfter: time.Minute}
	return poolID, cfgID, store, in
}

// Replicas decide one at a time per config (its row lock, SKIP LOCKED):
// eight deciding at once, over and over, for a pool that lacks its
// standby, ask for one agent, not eight — the agent being made counts at
// its full size in every later decision.
func TestReplicasDecidingAtOnceAddOneAgent(t *testing.T) {
	e := newEnv(t, envOptions{noService: true})
	poolID, cfgID, store, in := e.storeAutoscaleFixture()
	var mu sync.Mutex
	actions := map[domain.ScaleAction]int{}
	busy := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				d, err := store.Decide(e.ctx, cfgID, in)
				mu.Lock()
				switch {
				case errors.Is(err, autoscale.ErrBusy):
					busy++
				case err != nil:
					t.Error(err)
				default:
					actions[d.Action]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	as := e.autoscaledAgents(poolID)
	if len(as) != 1 || as[0].Lifecycle != "provisioning" || actions[domain.ScaleUp] != 1 {
		t.Fatalf("agents %+v after decisions %v (%d busy), want one being made after one scale_up", as, actions, busy)
	}
	// One agent, one agent.lifecycle in the outbox (no provisioner runs
	// to publish it), written with its row.
	if got := e.outboxEvents(events.TypeAgentLifecycle); got[""] != 1 {
		t.Errorf("agent.lifecycle events in the outbox: %d, want 1", got[""])
	}
	t.Logf("40 decisions by 8 replicas at once: %v, %d skipped (busy)", actions, busy)
}

// An agent whose machine did not come up is given up (provisioning →
// deleting, with the failure) and then deleted; each step is announced
// with its row, the deleted one with the config the row no longer names.
// Store level, with no machine: the steps' SQL and their events.
func TestAnAbandonedAgentsStepsAreAnnouncedWithItsRow(t *testing.T) {
	e := newEnv(t, envOptions{noService: true})
	poolID, cfgID, store, in := e.storeAutoscaleFixture()
	if d, err := store.Decide(e.ctx, cfgID, in); err != nil || d.Action != domain.ScaleUp {
		t.Fatalf("Decide = %+v, %v; want a scale up", d, err)
	}
	claim := func(lifecycle string) autoscale.Work {
		t.Helper()
		works, err := store.ClaimWork(e.ctx, "replica-1", time.Minute, 10)
		if err != nil || len(works) != 1 || works[0].Lifecycle != lifecycle {
			t.Fatalf("ClaimWork = %+v, %v; want the agent %s", works, err, lifecycle)
		}
		return works[0]
	}
	w := claim(domain.LifecycleProvisioning)
	m := autoscale.Machine{ID: "machine-1", Address: netip.MustParseAddr("10.1.2.3")}
	if err := store.MachineMade(e.ctx, w.AgentID, "replica-1", m); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("the engine of scaled-x did not answer before the boot timeout")
	if err := store.AgentFailed(e.ctx, w.AgentID, "replica-1", cause, true, 0); err != nil {
		t.Fatal(err)
	}
	w = claim(domain.LifecycleDeleting)
	if err := store.AgentGone(e.ctx, w.AgentID, "replica-1"); err != nil {
		t.Fatal(err)
	}
	if err := store.AgentGone(e.ctx, w.AgentID, "replica-1"); !errors.Is(err, autoscale.ErrLeaseLost) {
		t.Errorf("AgentGone of a deleted agent = %v, want ErrLeaseLost", err)
	}
	var payloads [][]byte
	if err := e.db.SelectContext(e.ctx, &payloads, `SELECT payload FROM outbox WHERE payload->>'type' = $1 ORDER BY seq`,
		events.TypeAgentLifecycle); err != nil {
		t.Fatal(err)
	}
	var got []events.AgentLifecycle
	for _, p := range payloads {
		if err := e.deps.Validator.Validate(p); err != nil {
			t.Errorf("agent.lifecycle in the outbox does not match its schema: %v", err)
		}
		ev, err := events.Decode(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, decode[events.AgentLifecycle](t, ev))
	}
	made := e.autoscaledAgents(poolID)
	if len(made) != 1 || len(got) != 3 {
		t.Fatalf("agents %+v, agent.lifecycle events %+v; want one agent and its three steps", made, got)
	}
	a := made[0]
	base := events.AgentLifecycle{Agent: a.Name, AgentID: a.ID, AutoscaleConfig: "scaled"}
	want := []events.AgentLifecycle{base, base, base}
	want[0].To, want[0].Reason = events.AgentProvisioning, got[0].Reason
	want[1].From, want[1].To, want[1].Reason = events.AgentProvisioning, events.AgentDeleting, cause.Error()
	want[2].From, want[2].To, want[2].Reason = events.AgentDeleting, events.AgentDeleted, "its machine and DNS record are deleted"
	for _, i := range []int{1, 2} {
		want[i].MachineID, want[i].Address = "machine-1", "10.1.2.3"
	}
	if !slices.Equal(got, want) || got[0].Reason == "" {
		t.Errorf("agent.lifecycle events:\n got %+v\nwant %+v", got, want)
	}
}

// A draining agent takes no new session; the staged sessions on it are
// replaced on another agent before they are destroyed (the pool keeps its
// size meanwhile), and a user's session on it is left to end.
func TestADrainingAgentsStagedSessionsMoveAndItsRunningOnesStay(t *testing.T) {
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 3, events.Permissions{})
	e.poolConfigChanged(cfg, "created")
	e.waitFor("3 staged sessions", 2*time.Minute, func() bool { return len(e.poolStaged(cfg)) == 3 })
	claimed, rid := e.claimStaged(f, cfg)
	e.waitEvent(events.TypeSessionReady, time.Minute, dataIs("request_id", rid))
	e.waitFor("3 staged again", 2*time.Minute, func() bool { return len(e.poolStaged(cfg)) == 3 })
	before := e.poolStaged(cfg)

	other := e.addAgent(f.zoneID, "agent-a2", 4, 4096)
	e.exec(`UPDATE agents SET lifecycle = 'draining', lifecycle_at = now() WHERE id = $1`, f.agentID)
	e.poolConfigChanged(cfg, "updated")
	e.waitFor("the staged sessions on the other agent", 2*time.Minute, func() bool {
		staged := e.poolStaged(cfg)
		if len(staged) != 3 {
			return false
		}
		for _, s := range staged {
			if s.AgentID.String != other {
				return false
			}
		}
		return true
	})
	for _, s := range before {
		if st := e.session(s.ID).Status; st != sessions.Destroyed && st != sessions.Destroying {
			t.Errorf("staged session %s on the draining agent is %s, want destroyed", s.ID, st)
		}
	}
	if s := e.session(claimed.ID); s.Status != sessions.Running || s.AgentID.String != f.agentID {
		t.Errorf("the user's session is %s on %s, want running on the draining agent", s.Status, s.AgentID.String)
	}
}
