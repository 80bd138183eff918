package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

var permissionFields = []string{
	"allow_audio", "allow_clipboard_down", "allow_clipboard_up", "allow_downloads",
	"allow_microphone", "allow_uploads", "allow_gamepad",
}

func TestDemoLoadCreatesTheDemoConfigurationOnce(t *testing.T) {
	api := newFakeAPI(t)
	out, errOut, code := runCLI(t, api.env(), "demo", "load")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "demo configuration loaded: 10 created, 0 already present") {
		t.Errorf("first load:\n%s", out)
	}

	byName := func(path, key, name string) map[string]any {
		for _, b := range api.createdIn(path) {
			if b[key] == name {
				return b
			}
		}
		t.Fatalf("%s %s was not created", path, name)
		return nil
	}
	for _, zone := range []string{"zone-a", "zone-b"} {
		z := byName("/api/v1/zones", "name", zone)
		if z["search_alternate_zones"] != true || z["allow_origin_domain"] != "greenroom.localhost" ||
			z["upstream_auth_address"] != strings.TrimPrefix(api.URL, "http://") {
			t.Errorf("zone %s = %v; staging needs real origin/upstream values", zone, z)
		}
		a := byName("/api/v1/agents", "name", "agent-"+zone)
		if a["zone"] != zone || a["docker_endpoint"] != "unix:///var/run/docker.sock" || a["cores"] != 2.0 || a["memory_mb"] != 2048.0 {
			t.Errorf("agent of %s = %v", zone, a)
		}
	}
	ws := byName("/api/v1/workspaces", "name", "demo")
	if ws["image"] != "greenroom/demo-workspace:latest" || ws["cores"] != 0.25 || ws["memory_mb"] != 128.0 ||
		ws["port"] != 8080.0 || ws["readiness_path"] != "/healthz" {
		t.Errorf("workspace = %v", ws)
	}
	assign, _ := json.Marshal(ws["docker_exec_config"])
	if string(assign) != `{"assign":{"cmd":["/demo-workspace","assign"],"user":"0"}}` {
		t.Errorf("docker_exec_config = %s", assign)
	}
	// The hook runs and the exec is skipped when both are declared.
	hook, _ := json.Marshal(ws["assign_hook"])
	if string(hook) != `{"path":"/.greenroom/assign","timeout":"5s"}` {
		t.Errorf("assign_hook = %s", hook)
	}
	group := byName("/api/v1/groups", "name", "everyone")
	sc := byName("/api/v1/staging-configs", "zone", "zone-a")
	if sc["workspace"] != "demo" || sc["desired_sessions"] != 3.0 || sc["expiration_hours"] != 1.0 {
		t.Errorf("staging config = %v", sc)
	}
	// Rule 3: alice and bob only get staged sessions if their group's
	// permissions equal the staging config's: neither names one, so both
	// get the same defaults (the config service's tests check that).
	for _, p := range permissionFields {
		if _, inGroup := group[p]; inGroup {
			t.Errorf("group everyone sets %s", p)
		}
		if _, inConfig := sc[p]; inConfig {
			t.Errorf("the staging config sets %s", p)
		}
	}
	policy := byName("/api/v1/web-filter-policies", "name", "demo-safe-browsing")
	if policy["default_allow"] != true || ws["web_filter_policy"] != "demo-safe-browsing" {
		t.Errorf("policy %v, workspace's %v", policy, ws["web_filter_policy"])
	}
	for _, user := range []string{"alice", "bob"} {
		u := byName("/api/v1/users", "username", user)
		if g, _ := json.Marshal(u["groups"]); string(g) != `["everyone"]` {
			t.Errorf("user %s groups %s", user, g)
		}
	}

	out, errOut, code = runCLI(t, api.env(), "demo", "load")
	if code != exitOK || !strings.Contains(out, "demo configuration loaded: 0 created, 10 already present") {
		t.Errorf("second load: exit %d, %s\n%s", code, errOut, out)
	}
}

func TestDemoLoadHelpSaysTheHookRunsAndTheExecIsSkipped(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "demo", "load", "--help")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"assign hook POST /.greenroom/assign (timeout 5s)", "the hook runs and the exec is skipped"} {
		if !strings.Contains(flat, want) {
			t.Errorf("demo load --help lacks %q:\n%s", want, out)
		}
	}
}

// The demo users get the passwords make up prints, also when they exist
// already, so that they can sign in at the gateway.
func TestDemoLoadGivesTheDemoUsersTheirPasswords(t *testing.T) {
	api := newFakeAPI(t)
	args := []string{"demo", "load", "--password", "alice=alice-pw-1234", "--password", "bob=bob-pw-12345"}
	if _, errOut, code := runCLI(t, api.env(), args...); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := map[string]string{"alice": "alice-pw-1234", "bob": "bob-pw-12345"}
	for _, u := range api.createdIn("/api/v1/users") {
		if name, _ := u["username"].(string); u["password"] != want[name] {
			t.Errorf("user %s created with password %v, want %q", name, u["password"], want[name])
		}
	}
	if _, errOut, code := runCLI(t, api.env(), args...); code != exitOK {
		t.Fatalf("second load: exit %d: %s", code, errOut)
	}
	if got := api.patchedAt("/api/v1/users/alice"); got["password"] != "alice-pw-1234" {
		t.Errorf("existing alice patched with %v, want her password", got)
	}
}

func TestDemoLoadStopsOnAnError(t *testing.T) {
	api := newFakeAPI(t)
	_, errOut, code := runCLI(t, map[string]string{"GREENROOM_API_URL": api.URL, "GREENROOM_ADMIN_TOKEN": "wrong"}, "demo", "load")
	if code != exitFailure || !strings.Contains(errOut, "creating zone zone-a: POST /api/v1/zones: 401") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

func TestDemoWaitReturnsOnceEnoughSessionsAreStaged(t *testing.T) {
	api := newFakeAPI(t)
	var polls atomic.Int32
	api.gets["/api/v1/staging-configs"] = func(*http.Request) any {
		n := polls.Add(1) - 1 // 0, 1, 2, 3, ...
		status := "filling"
		if n >= 3 {
			status = "ok"
		}
		return map[string]any{"items": []map[string]any{{
			"id": "0192f3a4-0000-7000-8000-0000000000aa", "zone": "zone-a", "workspace": "demo",
			"desired_sessions": 3, "current_sessions": min(n, 3), "status": status, "last_error": "",
		}}}
	}
	out, errOut, code := runCLI(t, api.env(), "demo", "wait", "--staged", "3", "--interval", "5ms", "--timeout", "10s")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	want := "zone-a/demo: 0/3 staged (filling)\nzone-a/demo: 1/3 staged (filling)\nzone-a/demo: 2/3 staged (filling)\nzone-a/demo: 3/3 staged (ok)\n"
	if out != want {
		t.Errorf("progress:\n%s\nwant:\n%s", out, want)
	}
}

func TestDemoWaitTimesOutWithTheShortfallReason(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/staging-configs"] = func(*http.Request) any {
		return map[string]any{"items": []map[string]any{{
			"id": "0192f3a4-0000-7000-8000-0000000000aa", "zone": "zone-a", "workspace": "demo",
			"desired_sessions": 3, "current_sessions": 1, "status": "shortfall",
			"last_error": "agent-zone-a: 0.1 free cores, 0.25 needed",
		}}}
	}
	out, errOut, code := runCLI(t, api.env(), "demo", "wait", "--staged", "3", "--interval", "5ms", "--timeout", "100ms")
	if code != exitFailure || !strings.Contains(errOut, "1 of 3 staged sessions after 100ms (status shortfall: agent-zone-a: 0.1 free cores") {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, errOut, out)
	}
}

func TestDemoWaitKeepsPollingWhileTheAPIIsDown(t *testing.T) {
	_, errOut, code := runCLI(t, map[string]string{"GREENROOM_API_URL": "http://127.0.0.1:1", "GREENROOM_ADMIN_TOKEN": "x"},
		"demo", "wait", "--interval", "5ms", "--timeout", "100ms")
	if code != exitFailure || !strings.Contains(errOut, "not 3 staged sessions within 100ms") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}
