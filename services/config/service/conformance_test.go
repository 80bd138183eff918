package service_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// TestOpenAPIConformance runs one scenario through every operation of
// schemas/api/openapi.yaml — each resource's CRUD and its 400, 401, 403, 404
// and 409 answers — while the harness validates every request and response
// against the spec. It fails if any operation was not exercised.
func TestOpenAPIConformance(t *testing.T) {
	h := newHarness(t)

	// Operations: no token needed.
	h.must(200, "GET", "/healthz", nil, nil, withoutToken())
	h.must(200, "GET", "/readyz", nil, nil, withoutToken())
	h.must(200, "GET", "/metrics", nil, nil, withoutToken())
	h.problem(401, "", "GET", "/api/v1/zones", nil, withoutToken())

	// Zones.
	eu := h.create("zones", obj{"name": "eu", "search_alternate_zones": true, "allow_origin_domain": "eu.example.test",
		"upstream_auth_address": "auth.eu.example.test", "load_balancing": "most_load", "priority": 1})
	h.create("zones", obj{"name": "us"})
	h.problem(409, "", "POST", "/api/v1/zones", obj{"name": "eu"})
	h.problem(400, "priority", "POST", "/api/v1/zones", obj{"name": "ap", "priority": 0})
	h.problem(413, "", "POST", "/api/v1/zones", obj{"name": strings.Repeat("a", 1<<20)})
	h.problem(413, "", "PATCH", "/api/v1/zones/us", obj{"allow_origin_domain": strings.Repeat("a", 1<<20)})
	h.problem(400, "name", "POST", "/api/v1/zones", obj{"name": "a\x00b"})
	h.must(200, "GET", "/api/v1/zones", nil, nil)
	h.must(200, "GET", "/api/v1/zones/eu", nil, nil)
	h.problem(404, "", "GET", "/api/v1/zones/nowhere", nil)
	h.must(200, "PATCH", "/api/v1/zones/us", obj{"priority": 5, "search_alternate_zones": true}, nil)
	h.problem(400, "load_balancing", "PATCH", "/api/v1/zones/us", obj{"load_balancing": "random"})
	h.problem(404, "", "PATCH", "/api/v1/zones/nowhere", obj{"priority": 5})
	h.problem(409, "", "PATCH", "/api/v1/zones/us", obj{"name": "eu"})

	// Pools.
	h.create("pools", obj{"name": "gpu-agents", "type": "docker_agent", "labels": []string{"gpu"}})
	h.create("pools", obj{"name": "desktops", "type": "server", "server_assignment": true})
	h.problem(400, "type", "POST", "/api/v1/pools", obj{"name": "x", "type": "vm"})
	h.problem(409, "", "POST", "/api/v1/pools", obj{"name": "desktops", "type": "server"})
	h.must(200, "GET", "/api/v1/pools", nil, nil)
	h.must(200, "GET", "/api/v1/pools/gpu-agents", nil, nil)
	h.problem(404, "", "GET", "/api/v1/pools/none", nil)
	h.must(200, "PATCH", "/api/v1/pools/gpu-agents", obj{"labels": []string{"gpu", "fast"}}, nil)

	// Agents.
	h.create("agents", obj{"name": "agent-1", "zone": "eu", "pool": "gpu-agents", "docker_endpoint": "unix:///var/run/docker.sock",
		"cores": 4, "memory_mb": 8192, "labels": []string{"ssd"}})
	h.problem(400, "zone", "POST", "/api/v1/agents", obj{"name": "agent-2", "zone": "mars", "docker_endpoint": "tcp://10.0.0.9:2375", "cores": 1, "memory_mb": 1})
	h.problem(400, "pool", "POST", "/api/v1/agents", obj{"name": "agent-2", "zone": "eu", "pool": "desktops", "docker_endpoint": "tcp://10.0.0.9:2375", "cores": 1, "memory_mb": 1})
	h.problem(400, "cores", "POST", "/api/v1/agents", obj{"name": "agent-2", "zone": "eu", "docker_endpoint": "tcp://10.0.0.9:2375", "cores": 0, "memory_mb": 1})
	h.must(200, "GET", "/api/v1/agents", nil, nil)
	var agent obj
	h.must(200, "GET", "/api/v1/agents/agent-1", nil, &agent)
	if agent["free_cores"] != 4.0 || agent["sessions"] != 0.0 || agent["pool"] != "gpu-agents" {
		t.Errorf("agent %v", agent)
	}
	h.must(200, "PATCH", "/api/v1/agents/agent-1", obj{"enabled": false, "pool": nil}, nil)
	h.problem(404, "", "PATCH", "/api/v1/agents/agent-9", obj{"enabled": false})

	// Web filter policies (groups and workspaces name them).
	h.create("web-filter-policies", obj{"name": "strict", "default_allow": false, "allowed_domains": []string{"example.com", "*.example.org"}})
	h.create("web-filter-policies", obj{"name": "open"})
	h.problem(400, "allowed_domains[1]", "POST", "/api/v1/web-filter-policies", obj{"name": "bad", "allowed_domains": []string{"example.com", "Example.COM"}})
	h.problem(400, "denied_domains[0]", "POST", "/api/v1/web-filter-policies", obj{"name": "bad", "allowed_domains": []string{"a.example"}, "denied_domains": []string{"a.example"}})
	h.problem(409, "", "POST", "/api/v1/web-filter-policies", obj{"name": "open"})
	h.must(200, "GET", "/api/v1/web-filter-policies", nil, nil)
	h.must(200, "GET", "/api/v1/web-filter-policies/strict", nil, nil)
	h.problem(404, "", "GET", "/api/v1/web-filter-policies/none", nil)
	h.must(200, "PATCH", "/api/v1/web-filter-policies/open", obj{"denied_domains": []string{"ads.example"}}, nil)
	h.problem(400, "denied_domains[0]", "PATCH", "/api/v1/web-filter-policies/open", obj{"denied_domains": []string{"http://ads.example"}})
	h.problem(404, "", "PATCH", "/api/v1/web-filter-policies/none", obj{"default_allow": true})
	h.problem(409, "", "PATCH", "/api/v1/web-filter-policies/open", obj{"name": "strict"})

	// Groups and users (servers can be assigned to users).
	everyone := h.create("groups", obj{"name": "everyone", "allow_audio": false, "run_config": obj{"hostname": "desk"},
		"volume_mapping":    obj{"/srv/groups/{username}": obj{"bind": "/home/kasm-user/group", "mode": "rw"}},
		"web_filter_policy": "strict", "session_time_limit": "8h", "keepalive_expiration": "30m"})
	if everyone.str("web_filter_policy") != "strict" || everyone.str("session_time_limit") != "8h0m0s" || everyone.str("keepalive_expiration") != "30m0s" {
		t.Errorf("group %v", everyone)
	}
	h.problem(400, "web_filter_policy", "POST", "/api/v1/groups", obj{"name": "g2", "web_filter_policy": 7})
	h.problem(400, "web_filter_policy", "POST", "/api/v1/groups", obj{"name": "g2", "web_filter_policy": "nothing"})
	h.problem(400, "session_time_limit", "POST", "/api/v1/groups", obj{"name": "g2", "session_time_limit": "8 hours"})
	h.problem(400, "run_config.privileged", "POST", "/api/v1/groups", obj{"name": "g2", "run_config": obj{"privileged": true}})
	h.must(200, "GET", "/api/v1/groups", nil, nil)
	h.must(200, "GET", "/api/v1/groups/everyone", nil, nil)
	h.must(200, "PATCH", "/api/v1/groups/everyone", obj{"priority": 10, "allow_audio": true, "keepalive_expiration": nil}, &everyone)
	if everyone["keepalive_expiration"] != nil || everyone.str("session_time_limit") != "8h0m0s" {
		t.Errorf("patched group %v", everyone)
	}
	h.problem(400, "keepalive_expiration", "PATCH", "/api/v1/groups/everyone", obj{"keepalive_expiration": "0s"})
	h.create("groups", obj{"name": "temp", "web_filter_policy": nil})

	alice := h.create("users", obj{"username": "alice", "groups": []string{"everyone", "temp"},
		"ssh_public_keys": []string{testSSHKey}, "attributes": obj{"department": "design"}, "password": "correct horse"})
	h.problem(400, "groups", "POST", "/api/v1/users", obj{"username": "bob", "groups": []string{"nobody"}})
	h.problem(400, "ssh_public_keys[0]", "POST", "/api/v1/users", obj{"username": "bob", "ssh_public_keys": []string{"not a key"}})
	h.problem(400, "attributes.cost-centre", "POST", "/api/v1/users", obj{"username": "bob", "attributes": obj{"cost-centre": "7"}})
	h.problem(400, "username", "POST", "/api/v1/users", obj{"username": "Bob"})
	h.problem(400, "password", "POST", "/api/v1/users", obj{"username": "bob", "password": "short"})
	h.problem(409, "", "POST", "/api/v1/users", obj{"username": "alice"})
	h.must(200, "GET", "/api/v1/users", nil, nil)
	h.must(200, "GET", "/api/v1/users/alice", nil, nil)
	h.problem(404, "", "GET", "/api/v1/users/bob", nil)
	h.must(200, "PATCH", "/api/v1/users/alice", obj{"groups": []string{"everyone"}, "attributes": obj{"department": "ops"}}, nil)
	h.must(200, "PATCH", "/api/v1/users/alice", obj{"password": nil}, nil)

	// Servers.
	h.create("servers", obj{"name": "desk-1", "zone": "eu", "pool": "desktops", "address": "10.0.0.5", "max_sessions": 2, "assigned_user": "alice",
		"labels": []string{"rdp"}})
	h.problem(400, "assigned_user", "POST", "/api/v1/servers", obj{"name": "desk-2", "zone": "eu", "address": "10.0.0.6", "assigned_user": "alice"})
	h.problem(400, "address", "POST", "/api/v1/servers", obj{"name": "desk-2", "zone": "eu"})
	h.must(200, "GET", "/api/v1/servers", nil, nil)
	h.must(200, "GET", "/api/v1/servers/desk-1", nil, nil)
	h.must(200, "PATCH", "/api/v1/servers/desk-1", obj{"assigned_user": nil, "max_sessions": 3}, nil)
	h.problem(404, "", "GET", "/api/v1/servers/desk-9", nil)

	// Workspaces.
	demo := h.create("workspaces", obj{
		"name": "demo", "image": "greenroom/demo:latest", "cores": 0.5, "memory_mb": 256,
		"include_labels":  []string{"ssd"},
		"home_directory":  "/home/user",
		"volume_mappings": obj{"/srv/shared": obj{"bind": "/home/user/shared", "mode": "ro", "uid": 1000, "gid": 1000}},
		"docker_exec_config": obj{"assign": obj{"cmd": []string{"/bin/sh", "-c", "echo assigned"}, "user": "root"},
			"first_launch": obj{"cmd": "echo first"}},
		"run_config": obj{"hostname": "demo", "environment": obj{"LANG": "C"}},
		"port":       8080, "readiness_path": "/healthz", "web_filter_policy": "strict",
	})
	if demo["revision"] != 1.0 || demo.str("web_filter_policy") != "strict" || demo.str("home_directory") != "/home/user" {
		t.Errorf("workspace %v", demo)
	}
	desktop := h.create("workspaces", obj{"name": "desktop", "server_pool": "desktops"})
	if desktop.str("image") != "" || desktop["cores"] != 1.0 || desktop.str("home_directory") != "/home/kasm-user" || desktop["web_filter_policy"] != nil {
		t.Errorf("server-pool workspace %v", desktop)
	}
	h.problem(400, "image", "POST", "/api/v1/workspaces", obj{"name": "w3"})
	h.problem(400, "image", "PATCH", "/api/v1/workspaces/desktop", obj{"server_pool": nil})
	h.problem(400, "server_pool", "POST", "/api/v1/workspaces", obj{"name": "w3", "image": "x", "server_pool": "gpu-agents"})
	h.problem(400, "docker_exec_config.assign.cmd", "POST", "/api/v1/workspaces", obj{"name": "w3", "image": "x", "docker_exec_config": obj{"assign": obj{}}})
	h.problem(400, "docker_exec_config.first_launch.cmd", "POST", "/api/v1/workspaces", obj{"name": "w3", "image": "x", "docker_exec_config": obj{"first_launch": obj{"user": "root"}}})
	h.problem(400, "run_config.privileged", "POST", "/api/v1/workspaces", obj{"name": "w3", "image": "x", "run_config": obj{"privileged": true}})
	h.problem(400, "volume_mappings./srv/{username}.bind", "POST", "/api/v1/workspaces", obj{"name": "w3", "image": "x",
		"volume_mappings": obj{"/srv/{username}": obj{"bind": "data"}}})
	h.problem(400, "home_directory", "POST", "/api/v1/workspaces", obj{"name": "w3", "image": "x", "home_directory": "home/user"})
	h.problem(400, "persistent_profile_path", "POST", "/api/v1/workspaces", obj{"name": "w3", "image": "x", "persistent_profile_path": "/srv/{username}/../x"})
	h.problem(400, "web_filter_policy", "POST", "/api/v1/workspaces", obj{"name": "w3", "image": "x", "web_filter_policy": "nothing"})
	h.must(200, "GET", "/api/v1/workspaces", nil, nil)
	h.must(200, "GET", "/api/v1/workspaces/demo", nil, nil)
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"readiness_path": "", "run_config": obj{}}, &demo)
	if demo["revision"] != 2.0 {
		t.Errorf("revision after a change of run_config: %v", demo["revision"])
	}
	h.problem(404, "", "DELETE", "/api/v1/workspaces/none", nil)

	// Staging configs.
	var sc obj
	h.must(201, "POST", "/api/v1/staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 2, "allow_audio": true}, &sc)
	h.problem(400, "zone", "POST", "/api/v1/staging-configs", obj{"zone": "us", "workspace": "demo", "desired_sessions": 1})
	h.problem(400, "workspace", "POST", "/api/v1/staging-configs", obj{"zone": "eu", "workspace": "none", "desired_sessions": 1})
	h.problem(400, "desired_sessions", "POST", "/api/v1/staging-configs", obj{"zone": "eu", "workspace": "demo"})
	h.problem(409, "", "POST", "/api/v1/staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})
	h.problem(409, "allow_origin_domain", "PATCH", "/api/v1/zones/eu", obj{"allow_origin_domain": "$request_host$"})
	h.must(200, "GET", "/api/v1/staging-configs", nil, nil)
	h.must(200, "GET", "/api/v1/staging-configs/"+sc.str("id"), nil, nil)
	h.problem(400, "id", "GET", "/api/v1/staging-configs/not-a-uuid", nil)
	h.problem(404, "", "GET", "/api/v1/staging-configs/"+uuid.NewString(), nil)
	h.must(200, "PATCH", "/api/v1/staging-configs/"+sc.str("id"), obj{"desired_sessions": 3, "expiration_hours": 0.5}, nil)
	h.problem(400, "expiration_hours", "PATCH", "/api/v1/staging-configs/"+sc.str("id"), obj{"expiration_hours": 0})
	h.problem(400, "zone", "PATCH", "/api/v1/staging-configs/"+sc.str("id"), obj{"zone": "us"})
	h.problem(404, "", "PATCH", "/api/v1/staging-configs/"+uuid.NewString(), obj{"desired_sessions": 1})

	// Sessions: one staged for the config, one running for alice.
	w := world{zone: eu, workspace: demo, user: alice}
	staged := h.insertSession(w, "", sessions.Staged, sc.str("id"))
	running := h.insertSession(w, "req-1", sessions.Running, "")
	h.insertViolation(w, "req-0", "web_filter_policy")
	onDemand := h.insertSessionWith(w, "req-2", sessions.Running, sessions.New{OnDemandReason: "permissions_differ:allow_audio"})
	var list struct{ Items []obj }
	h.must(200, "GET", "/api/v1/sessions", nil, &list)
	if len(list.Items) != 3 {
		t.Fatalf("sessions: %v", list.Items)
	}
	for _, s := range list.Items {
		want := any(nil)
		if s.str("id") == onDemand.ID {
			want = "permissions_differ:allow_audio"
		}
		if s["on_demand_reason"] != want {
			t.Errorf("session %s: on_demand_reason %v, want %v", s.str("id"), s["on_demand_reason"], want)
		}
	}
	h.must(200, "GET", "/api/v1/sessions?status=staged&origin=staged&staging_config="+sc.str("id"), nil, &list)
	if len(list.Items) != 1 || list.Items[0]["user"] != nil || list.Items[0].str("id") != staged.ID {
		t.Errorf("staged sessions: %v", list.Items)
	}
	h.must(200, "GET", "/api/v1/sessions?user=alice", nil, &list)
	if len(list.Items) != 2 || list.Items[0].str("user") != "alice" {
		t.Errorf("alice's sessions: %v", list.Items)
	}
	h.problem(400, "status", "GET", "/api/v1/sessions?status=sleeping", nil)
	h.must(200, "GET", "/api/v1/sessions/"+running.ID, nil, nil)
	h.problem(400, "id", "GET", "/api/v1/sessions/42", nil)
	h.problem(404, "", "GET", "/api/v1/sessions/"+uuid.NewString(), nil)
	h.must(200, "POST", "/api/v1/sessions", obj{"user": "alice", "workspace": "demo", "zone": "eu", "request_id": "req-1"}, nil)
	h.must(202, "POST", "/api/v1/sessions?wait=0", obj{"user": "alice", "workspace": "demo", "zone": "eu"}, nil)
	h.problem(404, "user", "POST", "/api/v1/sessions?wait=0", obj{"user": "bob", "workspace": "demo", "zone": "eu"})
	h.problem(400, "wait", "POST", "/api/v1/sessions?wait=1h", obj{"user": "alice", "workspace": "demo", "zone": "eu"})
	h.problem(409, "workspace", "POST", "/api/v1/sessions", obj{"user": "alice", "workspace": "desktop", "zone": "eu"},
		withHeader("Idempotency-Key", "req-1"))
	signedIn := h.signIn(alice, time.Hour)
	h.must(200, "GET", "/api/v1/session-auth", nil, nil, signedIn.bearer())
	h.must(200, "GET", "/api/v1/session-auth?session="+running.ID, nil, nil, signedIn.cookie())
	h.problem(401, "", "GET", "/api/v1/session-auth?session="+running.ID, nil)
	h.problem(403, "", "GET", "/api/v1/session-auth?session="+staged.ID, nil, signedIn.bearer())
	h.problem(404, "", "GET", "/api/v1/session-auth?session="+uuid.NewString(), nil, signedIn.bearer())
	h.problem(400, "session", "GET", "/api/v1/session-auth?session=42", nil, signedIn.bearer())
	h.must(200, "POST", "/api/v1/sessions/"+running.ID+"/keepalive", nil, nil)
	h.problem(409, "", "POST", "/api/v1/sessions/"+staged.ID+"/keepalive", nil)
	h.problem(404, "", "POST", "/api/v1/sessions/"+uuid.NewString()+"/keepalive", nil)
	h.must(202, "DELETE", "/api/v1/sessions/"+running.ID, nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/sessions/"+uuid.NewString(), nil)

	// API keys: a sessions key may only manage sessions.
	kiosk := h.create("api-keys", obj{"name": "kiosk", "scopes": []string{"sessions"}})
	h.problem(400, "scopes[0]", "POST", "/api/v1/api-keys", obj{"name": "k2", "scopes": []string{"root"}})
	h.problem(409, "", "POST", "/api/v1/api-keys", obj{"name": "kiosk", "scopes": []string{"admin"}})
	h.must(200, "GET", "/api/v1/api-keys", nil, nil)
	h.must(200, "GET", "/api/v1/api-keys/kiosk", nil, nil)
	h.problem(404, "", "GET", "/api/v1/api-keys/none", nil)
	h.must(200, "GET", "/api/v1/sessions/"+running.ID, nil, nil, withKey(kiosk.str("secret")))
	h.problem(403, "", "GET", "/api/v1/violations", nil, withKey(kiosk.str("secret")))
	h.must(204, "DELETE", "/api/v1/api-keys/kiosk", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/api-keys/kiosk", nil)
	h.problem(401, "", "GET", "/api/v1/sessions", nil, withKey(kiosk.str("secret")))

	// Violations.
	var violations struct{ Items []obj }
	h.must(200, "GET", "/api/v1/violations?user=alice&workspace=demo", nil, &violations)
	if len(violations.Items) != 1 || violations.Items[0].str("setting") != "web_filter_policy" {
		t.Errorf("violations: %v", violations.Items)
	}

	// AutoScale: VM and DNS providers (secrets written, never shown) and
	// an autoscale config of a docker_agent pool.
	h.create("pools", obj{"name": "scaled", "type": "docker_agent"})
	vmp := h.create("vm-providers", obj{"name": "local", "type": "local_docker", "settings": obj{"cores": 2, "memory_mb": 2048}})
	if vmp.str("ca_fingerprint") == "" || len(vmp["secrets_set"].([]any)) != 0 {
		t.Errorf("vm provider: %v", vmp)
	}
	h.problem(400, "settings.region", "POST", "/api/v1/vm-providers", obj{"name": "do", "type": "digitalocean",
		"settings": obj{"size": "s-2vcpu-4gb", "cores": 2, "memory_mb": 4096}, "secrets": obj{"token": "t"}})
	h.problem(400, "settings.colour", "POST", "/api/v1/vm-providers", obj{"name": "x", "type": "local_docker", "settings": obj{"colour": "red"}})
	h.problem(409, "", "POST", "/api/v1/vm-providers", obj{"name": "local", "type": "local_docker"})
	do := h.create("vm-providers", obj{"name": "do", "type": "digitalocean",
		"settings": obj{"region": "ams3", "size": "s-2vcpu-4gb", "cores": 2, "memory_mb": 4096}, "secrets": obj{"token": "dop_v1_secret"}})
	if strings.Contains(fmt.Sprint(do), "dop_v1_secret") || fmt.Sprint(do["secrets_set"]) != "[token]" {
		t.Errorf("digitalocean provider shows its secret or hides that it has one: %v", do)
	}
	h.must(200, "GET", "/api/v1/vm-providers", nil, nil)
	h.must(200, "GET", "/api/v1/vm-providers/do", nil, nil)
	h.problem(404, "", "GET", "/api/v1/vm-providers/none", nil)
	h.must(200, "PATCH", "/api/v1/vm-providers/do", obj{"secrets": obj{"token": "dop_v1_other"}}, nil)
	h.problem(400, "secrets.token", "PATCH", "/api/v1/vm-providers/do", obj{"secrets": obj{"token": nil}})
	h.create("dns-providers", obj{"name": "bind", "type": "rfc2136",
		"settings": obj{"server": "127.0.0.1:53", "zone": "agents.example.com", "tsig_key_name": "greenroom"}, "secrets": obj{"tsig_secret": "c2VjcmV0"}})
	h.problem(400, "secrets.tsig_secret", "POST", "/api/v1/dns-providers", obj{"name": "b2", "type": "rfc2136",
		"settings": obj{"server": "127.0.0.1:53", "zone": "agents.example.com", "tsig_key_name": "greenroom"}, "secrets": obj{"tsig_secret": "not base64!"}})
	h.must(200, "GET", "/api/v1/dns-providers", nil, nil)
	h.must(200, "GET", "/api/v1/dns-providers/bind", nil, nil)
	h.must(200, "PATCH", "/api/v1/dns-providers/bind", obj{"settings": obj{"server": "127.0.0.1:5353", "zone": "agents.example.com",
		"tsig_key_name": "greenroom"}}, nil)
	as := h.create("autoscale-configs", obj{"name": "scaled-eu", "pool": "scaled", "zone": "eu", "standby_cores": 2,
		"max_agents": 3, "vm_provider": "local", "dns_provider": "bind", "downscale_backoff": "5m"})
	if as.str("downscale_backoff") != "5m0s" || as["enabled"] != true || len(as["agents"].([]any)) != 0 {
		t.Errorf("autoscale config: %v", as)
	}
	h.problem(400, "pool", "POST", "/api/v1/autoscale-configs", obj{"name": "a2", "pool": "desktops", "zone": "eu",
		"max_agents": 1, "vm_provider": "local"})
	h.problem(400, "min_agents", "POST", "/api/v1/autoscale-configs", obj{"name": "a2", "pool": "scaled", "zone": "us",
		"min_agents": 4, "max_agents": 3, "vm_provider": "local"})
	h.problem(400, "vm_provider", "POST", "/api/v1/autoscale-configs", obj{"name": "a2", "pool": "scaled", "zone": "us",
		"max_agents": 3, "vm_provider": "none"})
	h.problem(409, "", "POST", "/api/v1/autoscale-configs", obj{"name": "a3", "pool": "scaled", "zone": "eu",
		"max_agents": 3, "vm_provider": "local"})
	h.must(200, "GET", "/api/v1/autoscale-configs", nil, nil)
	h.must(200, "GET", "/api/v1/autoscale-configs/scaled-eu", nil, nil)
	h.must(200, "PATCH", "/api/v1/autoscale-configs/scaled-eu", obj{"aggressive_scaling": true, "dns_provider": nil}, nil)
	h.problem(409, "", "DELETE", "/api/v1/vm-providers/local", nil)
	h.must(204, "DELETE", "/api/v1/autoscale-configs/scaled-eu", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/autoscale-configs/scaled-eu", nil)
	h.must(204, "DELETE", "/api/v1/vm-providers/do", nil, nil)
	h.must(204, "DELETE", "/api/v1/dns-providers/bind", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/dns-providers/bind", nil)

	// Deletes: what is referred to stays.
	h.problem(409, "", "DELETE", "/api/v1/zones/eu", nil)
	h.problem(409, "", "DELETE", "/api/v1/pools/desktops", nil)
	h.problem(409, "", "DELETE", "/api/v1/workspaces/demo", nil)
	h.problem(409, "", "DELETE", "/api/v1/users/alice", nil)
	if p := h.problem(409, "", "DELETE", "/api/v1/web-filter-policies/strict", nil); !strings.Contains(p.Detail, `group(s) "everyone"`) ||
		!strings.Contains(p.Detail, `workspace(s) "demo"`) {
		t.Errorf("policy in use: detail %q does not name its users", p.Detail)
	}
	h.must(204, "DELETE", "/api/v1/web-filter-policies/open", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/web-filter-policies/open", nil)
	h.problem(400, "server_assignment", "PATCH", "/api/v1/pools/desktops", obj{"type": "docker_agent"})
	h.problem(409, "type", "PATCH", "/api/v1/pools/desktops", obj{"type": "docker_agent", "server_assignment": false})
	h.must(204, "DELETE", "/api/v1/staging-configs/"+sc.str("id"), nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/staging-configs/"+sc.str("id"), nil)
	h.problem(400, "id", "DELETE", "/api/v1/staging-configs/x", nil)
	h.must(204, "DELETE", "/api/v1/agents/agent-1", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/agents/agent-1", nil)
	h.must(204, "DELETE", "/api/v1/servers/desk-1", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/servers/desk-1", nil)
	h.must(204, "DELETE", "/api/v1/workspaces/desktop", nil, nil)
	h.must(204, "DELETE", "/api/v1/pools/desktops", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/pools/desktops", nil)
	h.must(204, "DELETE", "/api/v1/groups/temp", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/groups/temp", nil)
	h.create("users", obj{"username": "bob"})
	h.must(204, "DELETE", "/api/v1/users/bob", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/users/bob", nil)
	h.must(204, "DELETE", "/api/v1/zones/us", nil, nil)
	h.problem(404, "", "DELETE", "/api/v1/zones/us", nil)

	// The event stream answers 401 without a token like every call (its
	// stream is TestEventsStreamTheBusAsServerSentEventsUntilTheServiceStops).
	h.problem(401, "", "GET", "/api/v1/events", nil, withoutToken())
	h.problem(400, "limit", "GET", "/api/v1/zones?limit=0", nil)

	if missing := h.contract.missing(); len(missing) > 0 {
		t.Errorf("operations of openapi.yaml not exercised: %v", missing)
	}
}
