package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	assigner "github.com/greenroom-dev/greenroom/services/assigner/service"
)

var permissions = []string{"allow_audio", "allow_clipboard_down", "allow_clipboard_up", "allow_downloads",
	"allow_microphone", "allow_uploads", "allow_gamepad"}

// workspace returns a demo workspace body; the short init delay keeps the
// suite fast while still exercising readiness probing.
func workspace(name string) map[string]any {
	return map[string]any{
		"name": name, "image": demoImage, "cores": 0.1, "memory_mb": 64, "port": 8080, "readiness_path": "/healthz",
		"run_config":         map[string]any{"environment": map[string]any{"GREENROOM_DEMO_INIT_DELAY": "300ms"}},
		"docker_exec_config": map[string]any{"assign": map[string]any{"cmd": []string{"/demo-workspace", "assign"}, "user": "root"}},
	}
}

func stagingConfig(zone, ws string, desired int) map[string]any {
	sc := map[string]any{"zone": zone, "workspace": ws, "desired_sessions": desired, "expiration_hours": 1}
	for _, p := range permissions {
		sc[p] = true
	}
	return sc
}

// TestSessionRequestsEndToEnd walks the seed's order — staged here, staged
// elsewhere, on demand here, on demand elsewhere — and its exceptions,
// through the HTTP API, the bus, PostgreSQL and real containers.
func TestSessionRequestsEndToEnd(t *testing.T) {
	g := start(t)
	for _, z := range []map[string]any{
		{"name": "zone-a", "search_alternate_zones": true, "priority": 1, "allow_origin_domain": "greenroom.test", "upstream_auth_address": "greenroom.test"},
		{"name": "zone-b", "search_alternate_zones": false, "priority": 2, "allow_origin_domain": "greenroom.test", "upstream_auth_address": "greenroom.test"},
	} {
		g.create("/api/v1/zones", z)
	}
	for _, a := range []string{"a", "b"} {
		g.create("/api/v1/agents", map[string]any{"name": "agent-" + a, "zone": "zone-" + a,
			"docker_endpoint": "unix:///var/run/docker.sock", "cores": 16, "memory_mb": 16384})
	}
	for _, ws := range []string{"demo", "demo-b", "demo-none"} {
		g.create("/api/v1/workspaces", workspace(ws))
	}
	g.create("/api/v1/groups", map[string]any{"name": "everyone", "priority": 100})
	users := []string{"alice", "bob", "carol", "dave", "erin"}
	for _, u := range users {
		g.create("/api/v1/users", map[string]any{"username": u, "groups": []string{"everyone"}})
	}
	poolA := g.create("/api/v1/staging-configs", stagingConfig("zone-a", "demo", 2))["id"].(string)
	poolB := g.create("/api/v1/staging-configs", stagingConfig("zone-b", "demo-b", 1))["id"].(string)
	g.waitStaged(poolA, 2, 60*time.Second)
	g.waitStaged(poolB, 1, 60*time.Second)

	t.Run("matching permissions get a staged session in the request's zone", func(t *testing.T) {
		s, took := g.session(t, "alice", "demo", "zone-a")
		if s["origin"] != "staged" || s["zone"] != "zone-a" || s["user"] != "alice" || s["staging_config_id"] != poolA {
			t.Fatalf("session %v", s)
		}
		t.Logf("staged session for alice over HTTP in %s", took)
		if body := g.page(t, s["id"].(string)); !strings.Contains(body, "alice") {
			t.Fatalf("the assign exec did not run: the page does not name alice:\n%s", body)
		}
		// The pool replaces what was assigned.
		g.waitStaged(poolA, 2, 60*time.Second)
		_, list := g.call(http.MethodGet, "/api/v1/sessions?staging_config="+poolA, nil)
		var unassigned, alices int
		for _, it := range list["items"].([]any) {
			row := it.(map[string]any)
			switch {
			case row["status"] == "staged" && row["user"] == nil:
				unassigned++
			case row["user"] == "alice":
				alices++
			}
		}
		if unassigned != 2 || alices != 1 {
			t.Fatalf("session list: %d staged without a user, %d of alice; want 2 and 1: %v", unassigned, alices, list)
		}
	})

	t.Run("none staged here gives a staged session from an alternate zone", func(t *testing.T) {
		s, _ := g.session(t, "bob", "demo-b", "zone-a")
		if s["origin"] != "staged" || s["zone"] != "zone-b" || s["staging_config_id"] != poolB {
			t.Fatalf("want bob's session from zone-b's pool: %v", s)
		}
	})

	t.Run("alternate search off gives an on-demand session", func(t *testing.T) {
		// demo is staged in zone-a only, and zone-b does not search others.
		s, took := g.session(t, "carol", "demo", "zone-b")
		if s["origin"] != "on_demand" || s["zone"] != "zone-b" || s["on_demand_reason"] != "no_staging_config" {
			t.Fatalf("want on demand in zone-b, no staging config searched: %v", s)
		}
		t.Logf("on-demand session for carol over HTTP in %s", took)
		if body := g.page(t, s["id"].(string)); !strings.Contains(body, "Created for carol") {
			t.Fatalf("the on-demand container does not know its user:\n%s", body)
		}
	})

	t.Run("nothing staged anywhere gives an on-demand session in the request's zone", func(t *testing.T) {
		s, _ := g.session(t, "dave", "demo-none", "zone-a")
		if s["origin"] != "on_demand" || s["zone"] != "zone-a" || s["staging_config_id"] != nil || s["on_demand_reason"] != "no_staging_config" {
			t.Fatalf("want on demand in zone-a: %v", s)
		}
	})

	t.Run("each differing permission gives an on-demand session", func(t *testing.T) {
		before := g.staged(poolA)
		var wg sync.WaitGroup
		for _, perm := range permissions {
			g.create("/api/v1/groups", map[string]any{"name": "no-" + perm, "priority": 1, perm: false})
			g.create("/api/v1/users", map[string]any{"username": "user-" + perm, "groups": []string{"everyone", "no-" + perm}})
			wg.Go(func() {
				s, _ := g.session(t, "user-"+perm, "demo", "zone-a")
				if s["origin"] != "on_demand" || s["on_demand_reason"] != "permissions_differ:"+perm {
					t.Errorf("a user whose %s differs got %v (%v)", perm, s["origin"], s["on_demand_reason"])
				}
			})
		}
		wg.Wait()
		if got := g.staged(poolA); got != before {
			t.Fatalf("the staged pool changed from %d to %d: a staged session was handed out", before, got)
		}
	})

	t.Run("each incompatible setting gives an on-demand session that has it, and a violation", func(t *testing.T) {
		// The agent is this host's engine: profiles and mappings live here.
		agentDir := t.TempDir()
		g.create("/api/v1/web-filter-policies", map[string]any{"name": "strict", "default_allow": false, "allowed_domains": []string{"example.com"}})
		groupSettings := map[string]any{
			"expose_user_environment_vars": true,
			"inject_ssh_keys":              true,
			"run_config":                   map[string]any{"hostname": "per-user"},
			"volume_mapping":               map[string]any{agentDir + "/srv/{username}": map[string]any{"bind": "/data", "mode": "rw"}},
			"web_filter_policy":            "strict",
		}
		type req struct{ user, workspace, setting string }
		var reqs []req
		for setting, value := range groupSettings {
			g.create("/api/v1/groups", map[string]any{"name": "with-" + setting, "priority": 1, setting: value})
			g.create("/api/v1/users", map[string]any{"username": "user-" + setting, "groups": []string{"everyone", "with-" + setting}})
			reqs = append(reqs, req{"user-" + setting, "demo", setting})
		}
		const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7o5Xc9rU0m8FJ0mxVjvtnPo0d1w3cZ9e3fQmYyGdw alice@laptop"
		if status, out := g.call(http.MethodPatch, "/api/v1/users/user-inject_ssh_keys", map[string]any{"ssh_public_keys": []string{key}}); status != http.StatusOK {
			t.Fatalf("PATCH user: %d %v", status, out)
		}
		if status, out := g.call(http.MethodPatch, "/api/v1/users/user-expose_user_environment_vars", map[string]any{"attributes": map[string]string{"team": "blue"}}); status != http.StatusOK {
			t.Fatalf("PATCH user: %d %v", status, out)
		}
		profile := workspace("demo-profile")
		profile["persistent_profile_path"] = agentDir + "/profiles/{username}"
		volumes := workspace("demo-volumes")
		volumes["volume_mappings"] = map[string]any{agentDir + "/home/{user_id}": map[string]any{"bind": "/home/user", "mode": "rw"}}
		for _, ws := range []map[string]any{profile, volumes} {
			g.create("/api/v1/workspaces", ws)
			// A staged pool the user could otherwise have been given.
			sc := g.create("/api/v1/staging-configs", stagingConfig("zone-a", ws["name"].(string), 1))["id"].(string)
			g.waitStaged(sc, 1, 60*time.Second)
		}
		reqs = append(reqs, req{"erin", "demo-profile", "persistent_profile"}, req{"erin", "demo-volumes", "volume_mappings"})

		var wg sync.WaitGroup
		var mu sync.Mutex
		containers := map[string]string{} // setting → container id
		for _, r := range reqs {
			wg.Go(func() {
				s, _ := g.session(t, r.user, r.workspace, "zone-a")
				if s["origin"] != "on_demand" || s["on_demand_reason"] != "incompatible:"+r.setting {
					t.Errorf("%s: a user with %s got %v (%v)", r.user, r.setting, s["origin"], s["on_demand_reason"])
				}
				mu.Lock()
				containers[r.setting] = s["container_id"].(string)
				mu.Unlock()
			})
		}
		wg.Wait()
		// The on-demand container has what forced it there: that is why
		// it could not be staged.
		inspect := func(setting, format string) string {
			out, err := exec.Command("docker", "inspect", "--format", format, containers[setting]).Output()
			if err != nil {
				t.Fatalf("docker inspect for %s: %v", setting, err)
			}
			return strings.TrimSpace(string(out))
		}
		for setting, want := range map[string]string{
			"persistent_profile":           agentDir + "/profiles/erin:/home/kasm-user:rw",
			"volume_mappings":              ":/home/user:rw",
			"volume_mapping":               agentDir + "/srv/user-volume_mapping:/data:rw",
			"run_config":                   "per-user",
			"expose_user_environment_vars": "GREENROOM_USER_TEAM=blue",
			"web_filter_policy":            `GREENROOM_WEB_FILTER={"name":"strict","default_allow":false,"allowed_domains":["example.com"],"denied_domains":[]}`,
		} {
			format := "{{json .HostConfig.Binds}}"
			switch setting {
			case "run_config":
				format = "{{.Config.Hostname}}"
			case "expose_user_environment_vars", "web_filter_policy":
				format = "{{json .Config.Env}}"
			}
			if got := inspect(setting, format); !strings.Contains(got, strings.ReplaceAll(want, `"`, `\"`)) && !strings.Contains(got, want) {
				t.Errorf("the session forced on demand by %s lacks %s: %s", setting, want, got)
			}
		}
		keys, err := exec.Command("docker", "exec", containers["inject_ssh_keys"], "/demo-workspace", "file", "read", "/home/kasm-user/.ssh/authorized_keys").CombinedOutput()
		if err != nil || string(keys) != key+"\n" {
			t.Errorf("authorized_keys of the inject_ssh_keys session: %q (%v)", keys, err)
		}
		_, list := g.call(http.MethodGet, "/api/v1/violations", nil)
		seen := map[string]bool{}
		for _, it := range list["items"].([]any) {
			v := it.(map[string]any)
			seen[fmt.Sprint(v["user"], "/", v["workspace"], "/", v["setting"])] = v["session_id"] != nil
		}
		for _, r := range reqs {
			if !seen[r.user+"/"+r.workspace+"/"+r.setting] {
				t.Errorf("no violation with a session for %s %s %s: %v", r.user, r.workspace, r.setting, list)
			}
		}
		if n := len(g.rec.Find(events.TypeStagingViolation, "")); n != len(reqs) {
			t.Errorf("%d staging.violation events, want %d", n, len(reqs))
		}
	})

	t.Run("the smallest staging config serves users of a group written without permissions", func(t *testing.T) {
		// Defaults that match: neither the group nor the config names an
		// allow_* field.
		g.create("/api/v1/workspaces", workspace("demo-min"))
		sc := g.create("/api/v1/staging-configs", map[string]any{"zone": "zone-a", "workspace": "demo-min", "desired_sessions": 1})["id"].(string)
		g.waitStaged(sc, 1, 60*time.Second)
		s, _ := g.session(t, "dave", "demo-min", "zone-a")
		if s["origin"] != "staged" || s["staging_config_id"] != sc || s["on_demand_reason"] != nil {
			t.Fatalf("want a staged session from the smallest config: %v", s)
		}
	})

	t.Run("a session ends at its group's time limit: container removed, capacity freed", func(t *testing.T) {
		g.create("/api/v1/groups", map[string]any{"name": "short", "priority": 1, "session_time_limit": "2s"})
		g.create("/api/v1/users", map[string]any{"username": "frank", "groups": []string{"everyone", "short"}})
		s, _ := g.session(t, "frank", "demo-none", "zone-a")
		if s["expires_at"] == nil {
			t.Fatalf("a session with a time limit shows no expires_at: %v", s)
		}
		id := s["id"].(string)
		apptest.Eventually(t, 30*time.Second, "frank's session destroyed", func() bool {
			_, now := g.call(http.MethodGet, "/api/v1/sessions/"+id, nil)
			return now["status"] == "destroyed"
		})
		expired := g.rec.Find(events.TypeSessionExpired, "")
		found := false
		for _, ev := range expired {
			var d events.SessionExpired
			if err := ev.Event.DecodeData(&d); err == nil && d.SessionID == id && d.Reason == events.ExpiredTimeLimit {
				found = true
			}
		}
		if !found {
			t.Errorf("no session.expired with reason time_limit for %s", id)
		}
		if out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=greenroom.session="+id).Output(); strings.TrimSpace(string(out)) != "" {
			t.Errorf("the container of the ended session is still there: %s", out)
		}
		var live int
		if err := g.env.DB.Get(&live, `SELECT count(*) FROM sessions WHERE id = $1 AND status NOT IN ('destroyed', 'failed')`, id); err != nil || live != 0 {
			t.Errorf("the ended session still holds its agent's capacity (%d live, %v)", live, err)
		}
	})

	t.Run("a duplicate request_id yields one session", func(t *testing.T) {
		first, _ := g.session(t, "alice", "demo", "zone-a", "order-42")
		again, _ := g.session(t, "alice", "demo", "zone-a", "order-42")
		status, byHeader := g.call(http.MethodPost, "/api/v1/sessions", map[string]any{"user": "alice", "workspace": "demo", "zone": "zone-a"},
			"Idempotency-Key", "order-42")
		if first["id"] != again["id"] || status != http.StatusOK || byHeader["id"] != first["id"] {
			t.Fatalf("one request_id gave sessions %v, %v and %d %v", first["id"], again["id"], status, byHeader["id"])
		}
		var n int
		if err := g.env.DB.Get(&n, `SELECT count(*) FROM sessions WHERE request_id = 'order-42'`); err != nil || n != 1 {
			t.Fatalf("%d sessions for one request_id (%v)", n, err)
		}
	})

	t.Run("an undecodable request is dead-lettered and the next one is served", func(t *testing.T) {
		msg := nats.NewMsg(events.TypeSessionRequested)
		msg.Data = []byte(`{"this is": "not a cloudevent"`)
		msg.Header.Set(apptest.HeaderTestGarbage, "1")
		if _, err := g.deps.JS.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
		g.rec.Wait(t, bus.DeadLetterSubject(assigner.ConsumerName), "", 10*time.Second)
		s, _ := g.session(t, "bob", "demo", "zone-a")
		if s["origin"] != "staged" {
			t.Fatalf("the next good request: %v", s)
		}
	})

	t.Run("the audit log explains, rebuilds and verifies all of it", func(t *testing.T) {
		checkAuditLog(t, g)
	})
}
