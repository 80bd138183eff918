package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
	provisioner "github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// scaledAgent is an agent of the autoscaled pool as the API shows it.
type scaledAgent struct {
	name, lifecycle, endpoint, machine string
	sessions                           int
}

// scaledAgents lists the agents autoscale config name made, from its
// GET, with their endpoints and machines from the agents' own GETs.
func (g *greenroom) scaledAgents(name string) []scaledAgent {
	g.t.Helper()
	status, c := g.call(http.MethodGet, "/api/v1/autoscale-configs/"+name, nil)
	if status != http.StatusOK {
		g.t.Fatalf("GET autoscale config %s: %d %v", name, status, c)
	}
	var out []scaledAgent
	for _, a := range c["agents"].([]any) {
		a := a.(map[string]any)
		_, agent := g.call(http.MethodGet, "/api/v1/agents/"+a["name"].(string), nil)
		out = append(out, scaledAgent{name: a["name"].(string), lifecycle: a["lifecycle"].(string),
			endpoint: fmt.Sprint(agent["docker_endpoint"]), machine: fmt.Sprint(agent["machine_id"]), sessions: int(a["sessions"].(float64))})
	}
	return out
}

func countLifecycle(as []scaledAgent, lifecycle string) int {
	n := 0
	for _, a := range as {
		if a.lifecycle == lifecycle {
			n++
		}
	}
	return n
}

// TestADockerAgentPoolScalesItselfWithRealMachines is issue 17's end to
// end: a docker_agent pool with standby_cores 2, max_agents 3 and the
// local VM provider, whose machines are containers running Debian's
// dockerd reached over TLS. Requests fill the first agent, a second
// appears before it is full and takes sessions, and when they end the
// extra agents drain and go after the backoff; an agent whose engine stops
// answering gets no placements, and the pool's shortfall names it.
func TestADockerAgentPoolScalesItselfWithRealMachines(t *testing.T) {
	g := startTuned(t, apptest.New(t), func(c *provisioner.Config) {
		c.Autoscale = autoscale.Config{Interval: 500 * time.Millisecond, BootTimeout: 3 * time.Minute}
		c.EngineWatcher = audit.EngineWatcherConfig{Heartbeat: 500 * time.Millisecond, PingTimeout: time.Second, BackoffMax: 2 * time.Second}
	})
	t.Cleanup(func() { removeMachines(t, "greenroom.test="+g.label) })
	g.create("/api/v1/zones", map[string]any{"name": "zone-a", "allow_origin_domain": "greenroom.test", "upstream_auth_address": "greenroom.test"})
	g.create("/api/v1/pools", map[string]any{"name": "scaled", "type": "docker_agent"})
	ws := workspace("demo")
	ws["cores"] = 1
	g.create("/api/v1/workspaces", ws)
	group := map[string]any{"name": "everyone", "priority": 100}
	for _, p := range permissions {
		group[p] = true
	}
	g.create("/api/v1/groups", group)
	users := []string{"alice", "bob", "carol", "dave"}
	for _, u := range users {
		g.create("/api/v1/users", map[string]any{"username": u, "groups": []string{"everyone"}})
	}
	g.create("/api/v1/vm-providers", map[string]any{"name": "local", "type": "local_docker",
		"settings": map[string]any{"cores": 2, "memory_mb": 1024, "network": "greenroom-e2e-agents"}})
	g.create("/api/v1/autoscale-configs", map[string]any{"name": "scaled", "pool": "scaled", "zone": "zone-a",
		"standby_cores": 2, "max_agents": 3, "vm_provider": "local", "downscale_backoff": "3s"})

	// No agent and two cores of standby: the first agent.
	apptest.Eventually(t, 4*time.Minute, "a first active agent", func() bool {
		as := g.scaledAgents("scaled")
		return len(as) == 1 && as[0].lifecycle == "active"
	})
	first := g.scaledAgents("scaled")[0].name

	// A staging pool of 2 in the zone fills the first agent; the
	// second agent is asked for as soon as less than 2 cores are free,
	// before the first is full.
	_, sc := g.call(http.MethodPost, "/api/v1/staging-configs", stagingConfig("zone-a", "demo", 2))
	scID := sc["id"].(string)
	var secondAsked time.Time
	apptest.Eventually(t, 4*time.Minute, "a second agent asked for", func() bool {
		as := g.scaledAgents("scaled")
		if len(as) >= 2 && secondAsked.IsZero() {
			secondAsked = time.Now()
		}
		return len(as) >= 2
	})
	g.waitStaged(scID, 2, 4*time.Minute)

	// Requests while the second agent is being made: the staged ones are
	// handed over at once; the others wait for room or are refused.
	var mu sync.Mutex
	outcomes := map[string]int{}
	var ids []string
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			status, s := g.request(u, "demo", "zone-a")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case status == http.StatusCreated && s["status"] == "running":
				outcomes[fmt.Sprint(s["origin"])]++
				ids = append(ids, s["id"].(string))
			default:
				outcomes[fmt.Sprintf("refused %d", status)]++
			}
		})
	}
	wg.Wait()
	t.Logf("4 requests during the scale-up: %v", outcomes)
	if outcomes["staged"] < 2 {
		t.Errorf("outcomes %v: the 2 staged sessions were not handed over", outcomes)
	}

	// The second agent takes sessions: the pool refills onto it.
	var secondReady time.Duration
	apptest.Eventually(t, 4*time.Minute, "sessions on a second agent", func() bool {
		for _, a := range g.scaledAgents("scaled") {
			if a.name != first && a.lifecycle == "active" && a.sessions > 0 {
				if secondReady == 0 {
					secondReady = time.Since(secondAsked)
				}
				return true
			}
		}
		return false
	})
	t.Logf("second agent: decision → first session on it within %s", secondReady.Round(100*time.Millisecond))
	g.waitStaged(scID, 2, 4*time.Minute)

	// Every session ends (the pool to 0, the users' sessions deleted):
	// past the backoff the extra agents drain and go; one stays, as the
	// standby needs its two cores.
	status, _ := g.call(http.MethodPatch, "/api/v1/staging-configs/"+scID, map[string]any{"desired_sessions": 0})
	if status != http.StatusOK {
		t.Fatalf("PATCH staging config: %d", status)
	}
	for _, id := range ids {
		g.call(http.MethodDelete, "/api/v1/sessions/"+id, nil)
	}
	start := time.Now()
	var drained time.Time
	apptest.Eventually(t, 4*time.Minute, "one agent left", func() bool {
		as := g.scaledAgents("scaled")
		if drained.IsZero() && countLifecycle(as, "draining") > 0 {
			drained = time.Now()
		}
		return len(as) == 1 && as[0].lifecycle == "active"
	})
	t.Logf("sessions ended → extra agents drained and deleted: %s (first drain after %s; backoff 3s)",
		time.Since(start).Round(100*time.Millisecond), drained.Sub(start).Round(100*time.Millisecond))
	var deleted int
	if err := g.env.DB.Get(&deleted, `SELECT count(*) FROM agents WHERE lifecycle = 'deleted' AND machine_id <> ''`); err != nil {
		t.Fatal(err)
	}
	if deleted == 0 {
		t.Error("no agent was recorded deleted")
	}
	if out, _ := exec.Command("docker", "ps", "-q", "--filter", "label=greenroom.test="+g.label, "--filter", "label=greenroom.machine").Output(); len(strings.Fields(string(out))) != 1 {
		t.Errorf("machines left running: %q, want 1", out)
	}

	// The agent left stops answering (its dockerd frozen): no
	// placements, and with max_agents reached the pool's shortfall names
	// it; thawed, it takes the session by itself.
	left := g.scaledAgents("scaled")[0]
	g.call(http.MethodPatch, "/api/v1/autoscale-configs/scaled", map[string]any{"min_agents": 1, "max_agents": 1})
	if out, err := exec.Command("docker", "pause", left.machine).CombinedOutput(); err != nil {
		t.Fatalf("docker pause: %v %s", err, out)
	}
	unpause := func() { _ = exec.Command("docker", "unpause", left.machine).Run() }
	t.Cleanup(unpause)
	time.Sleep(3 * time.Second) // a few missed heartbeats
	g.call(http.MethodPatch, "/api/v1/staging-configs/"+scID, map[string]any{"desired_sessions": 1})
	apptest.Eventually(t, time.Minute, "a shortfall naming the frozen agent", func() bool {
		_, sc := g.call(http.MethodGet, "/api/v1/staging-configs/"+scID, nil)
		return sc["status"] == "shortfall" && strings.Contains(fmt.Sprint(sc["last_error"]), left.name)
	})
	if n := g.scaledAgents("scaled")[0].sessions; n != 0 {
		t.Errorf("%d sessions placed on the frozen agent", n)
	}
	status, refused := g.request("alice", "demo", "zone-a")
	if status != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(refused["detail"]), left.name) {
		t.Errorf("a request while the only agent is frozen: %d %v, want 503 naming %s", status, refused, left.name)
	}
	unpause()
	g.waitStaged(scID, 1, 3*time.Minute)
}

// removeMachines removes the machines (containers running dockerd, and
// their volumes) carrying label.
func removeMachines(t *testing.T, label string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "label="+label, "--filter", "label=greenroom.machine").Output()
	if err != nil {
		t.Logf("listing machines: %v", err)
		return
	}
	for _, id := range strings.Fields(string(out)) {
		name, _ := exec.CommandContext(ctx, "docker", "inspect", "-f", `{{index .Config.Labels "greenroom.machine"}}`, id).Output()
		_ = exec.CommandContext(ctx, "docker", "rm", "-f", "-v", id).Run()
		if n := strings.TrimSpace(string(name)); n != "" {
			_ = exec.CommandContext(ctx, "docker", "volume", "rm", "-f", "greenroom-machine-"+n).Run()
		}
	}
}
