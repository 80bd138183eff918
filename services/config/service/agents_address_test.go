package service_test

import (
	"testing"
)

// An agent's sessions' ports are published on its private address only
// (issue 13): internal_address is an IP address, and an agent whose engine
// is reached by host name must have one.
func TestAgentInternalAddressIsAnIPAndRequiredForAnEngineReachedByName(t *testing.T) {
	h := newHarness(t)
	h.create("zones", obj{"name": "eu"})
	agent := func(endpoint string, extra obj) obj {
		o := obj{"name": "a1", "zone": "eu", "docker_endpoint": endpoint, "cores": 1, "memory_mb": 512}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	h.problem(400, "internal_address", "POST", "/api/v1/agents", agent("tcp://10.0.0.9:2375", obj{"internal_address": "docker-1.internal"}))
	h.problem(400, "internal_address", "POST", "/api/v1/agents", agent("tcp://docker-1.example.com:2376", nil))

	a := h.create("agents", agent("tcp://docker-1.example.com:2376", obj{"internal_address": "10.1.0.7"}))
	if a.str("internal_address") != "10.1.0.7" {
		t.Errorf("created %v, want internal_address 10.1.0.7", a)
	}
	// Clearing it again would leave the ports nowhere to go.
	h.problem(400, "internal_address", "PATCH", "/api/v1/agents/a1", obj{"internal_address": ""})
	// A local engine needs none: its sessions are published on loopback.
	local := h.create("agents", obj{"name": "a2", "zone": "eu", "docker_endpoint": "unix:///var/run/docker.sock", "cores": 1, "memory_mb": 512})
	if local.str("internal_address") != "" {
		t.Errorf("created %v, want an empty internal_address", local)
	}
}
