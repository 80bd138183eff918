package service_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// An agent an autoscale config made is its config's: its machine's
// name, zone, pool and endpoint cannot change by hand, nor can it be
// deleted by hand (its machine would be left behind); its enabled flag and
// labels can. The config lists it, with its lifecycle, and cannot be
// deleted while it has it.
func TestAnAutoscaledAgentIsItsConfigs(t *testing.T) {
	h := newHarness(t)
	h.stagingZone("eu")
	h.stagingZone("us")
	h.create("pools", obj{"name": "scaled", "type": "docker_agent"})
	h.create("vm-providers", obj{"name": "local", "type": "local_docker"})
	h.create("dns-providers", obj{"name": "bind", "type": "rfc2136", "settings": obj{"server": "10.0.0.2:53", "zone": "agents.example.com"}})
	cfg := h.create("autoscale-configs", obj{"name": "scaled-eu", "pool": "scaled", "zone": "eu", "max_agents": 2, "vm_provider": "local",
		"dns_provider": "bind"})
	h.problem(400, "standby_gpus", "PATCH", "/api/v1/autoscale-configs/scaled-eu", obj{"standby_gpus": 1})
	// As the provisioner's autoscaler records a machine it made.
	h.deps.DB.MustExec(`INSERT INTO agents (id, name, zone_id, pool_id, docker_endpoint, internal_address, cores, memory_mb,
			autoscale_config_id, vm_provider_id, machine_id, lifecycle)
		SELECT $1, 'scaled-eu-a1b2c3', ac.zone_id, ac.pool_id, 'tcp://172.30.0.2:2376', '172.30.0.2', 2, 2048, ac.id, ac.vm_provider_id,
			'c0ffee', 'active'
		FROM autoscale_configs ac WHERE ac.id = $2`, uuid.NewString(), cfg.str("id"))

	var agent obj
	h.must(200, "GET", "/api/v1/agents/scaled-eu-a1b2c3", nil, &agent)
	if agent.str("autoscale_config") != "scaled-eu" || agent.str("lifecycle") != "active" || agent.str("machine_id") != "c0ffee" {
		t.Errorf("agent: %v", agent)
	}
	for field, value := range map[string]any{"zone": "us", "name": "renamed", "docker_endpoint": "tcp://10.0.0.1:2376", "pool": nil} {
		if p := h.problem(409, field, "PATCH", "/api/v1/agents/scaled-eu-a1b2c3", obj{field: value}); !strings.Contains(p.Detail, "scaled-eu") {
			t.Errorf("PATCH %s: detail %q does not name the config", field, p.Detail)
		}
	}
	h.must(200, "PATCH", "/api/v1/agents/scaled-eu-a1b2c3", obj{"enabled": false, "labels": []string{"ssd"}}, nil)
	if p := h.problem(409, "", "DELETE", "/api/v1/agents/scaled-eu-a1b2c3", nil); !strings.Contains(p.Detail, "autoscale config") {
		t.Errorf("DELETE: %q", p.Detail)
	}

	h.must(200, "GET", "/api/v1/autoscale-configs/scaled-eu", nil, &cfg)
	agents, _ := cfg["agents"].([]any)
	if len(agents) != 1 || obj(agents[0].(map[string]any)).str("lifecycle") != "active" {
		t.Errorf("the config's agents: %v", cfg["agents"])
	}
	h.problem(409, "zone", "PATCH", "/api/v1/autoscale-configs/scaled-eu", obj{"zone": "us"})
	if p := h.problem(409, "", "DELETE", "/api/v1/autoscale-configs/scaled-eu", nil); !strings.Contains(p.Detail, "scaled-eu-a1b2c3") {
		t.Errorf("DELETE config: %q", p.Detail)
	}
	h.problem(409, "", "DELETE", "/api/v1/vm-providers/local", nil)
	// Where its machine and its record are cannot change under them: they
	// would be left behind.
	h.problem(409, "dns_provider", "PATCH", "/api/v1/autoscale-configs/scaled-eu", obj{"dns_provider": nil})
	h.problem(409, "settings.network", "PATCH", "/api/v1/vm-providers/local", obj{"settings": obj{"network": "elsewhere"}})
	h.problem(409, "type", "PATCH", "/api/v1/vm-providers/local", obj{"type": "digitalocean",
		"settings": obj{"region": "ams3", "size": "s-2vcpu-4gb", "cores": 2, "memory_mb": 4096}, "secrets": obj{"token": "t"}})
	h.problem(409, "settings.zone", "PATCH", "/api/v1/dns-providers/bind", obj{"settings": obj{"server": "10.0.0.2:53", "zone": "other.example.com"}})
	h.must(200, "PATCH", "/api/v1/vm-providers/local", obj{"settings": obj{"cores": 4}}, nil)

	// Its machine gone, the agent is history: it belongs to nothing, and
	// the config and the provider can go.
	h.deps.DB.MustExec(`UPDATE agents SET lifecycle = 'deleted', autoscale_config_id = NULL, vm_provider_id = NULL, pool_id = NULL
		WHERE name = 'scaled-eu-a1b2c3'`)
	h.must(204, "DELETE", "/api/v1/autoscale-configs/scaled-eu", nil, nil)
	h.must(204, "DELETE", "/api/v1/vm-providers/local", nil, nil)
}
