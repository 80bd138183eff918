package service_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// testSSHKey is a well-formed authorized_keys line.
const testSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@example"

// TestContainerSettingErrorsNameTheField checks that every setting the
// provisioner applies to a container is refused with a 400 naming the key
// that is wrong, as libs/containerconfig sees it, and stores nothing.
func TestContainerSettingErrorsNameTheField(t *testing.T) {
	h := newHarness(t)
	h.world()
	h.create("web-filter-policies", obj{"name": "strict", "default_allow": false})
	before := h.outboxRows()
	for _, tc := range []struct {
		name, method, path string
		body               obj
		field              string
	}{
		{"unknown run_config key", "POST", "/api/v1/workspaces",
			obj{"name": "w2", "image": "x", "run_config": obj{"hostname": "h", "privileged": true}}, "run_config.privileged"},
		{"unknown run_config key in a patch", "PATCH", "/api/v1/workspaces/demo",
			obj{"run_config": obj{"network_mode": "host"}}, "run_config.network_mode"},
		{"bad run_config value", "POST", "/api/v1/workspaces",
			obj{"name": "w2", "image": "x", "run_config": obj{"dns": []string{"dns.example"}}}, "run_config.dns[0]"},
		{"relative volume host path", "POST", "/api/v1/workspaces",
			obj{"name": "w2", "image": "x", "volume_mappings": obj{"srv/{username}": obj{"bind": "/data"}}}, "volume_mappings.srv/{username}"},
		{"volume bind escaping", "POST", "/api/v1/workspaces",
			obj{"name": "w2", "image": "x", "volume_mappings": obj{"/srv/{username}": obj{"bind": "/data/../etc"}}}, "volume_mappings./srv/{username}.bind"},
		{"volume uid without gid", "PATCH", "/api/v1/workspaces/demo",
			obj{"volume_mappings": obj{"/srv/a": obj{"bind": "/a", "uid": 1000}}}, "volume_mappings./srv/a"},
		{"relative home directory", "POST", "/api/v1/workspaces",
			obj{"name": "w2", "image": "x", "home_directory": "home/kasm-user"}, "home_directory"},
		{"unclean home directory in a patch", "PATCH", "/api/v1/workspaces/demo",
			obj{"home_directory": "/home/kasm-user/"}, "home_directory"},
		{"relative persistent profile path", "POST", "/api/v1/workspaces",
			obj{"name": "w2", "image": "x", "persistent_profile_path": "profiles/{username}"}, "persistent_profile_path"},
		{"unknown workspace web filter policy", "POST", "/api/v1/workspaces",
			obj{"name": "w2", "image": "x", "web_filter_policy": "lenient"}, "web_filter_policy"},
		{"unknown workspace web filter policy in a patch", "PATCH", "/api/v1/workspaces/demo",
			obj{"web_filter_policy": "lenient"}, "web_filter_policy"},
		{"first_launch without cmd", "PATCH", "/api/v1/workspaces/demo",
			obj{"docker_exec_config": obj{"first_launch": obj{"user": "root"}}}, "docker_exec_config.first_launch.cmd"},
		{"unknown group run_config key", "POST", "/api/v1/groups",
			obj{"name": "g2", "run_config": obj{"privileged": true}}, "run_config.privileged"},
		{"bad group volume mapping", "POST", "/api/v1/groups",
			obj{"name": "g2", "volume_mapping": obj{"/srv/{user_id}": obj{"bind": "relative"}}}, "volume_mapping./srv/{user_id}.bind"},
		{"unknown group web filter policy", "POST", "/api/v1/groups",
			obj{"name": "g2", "web_filter_policy": "lenient"}, "web_filter_policy"},
		{"unknown group web filter policy in a patch", "PATCH", "/api/v1/groups/everyone",
			obj{"web_filter_policy": "lenient"}, "web_filter_policy"},
		{"malformed duration", "POST", "/api/v1/groups",
			obj{"name": "g2", "session_time_limit": "8 hours"}, "session_time_limit"},
		{"zero duration", "PATCH", "/api/v1/groups/everyone",
			obj{"keepalive_expiration": "0s"}, "keepalive_expiration"},
		{"negative duration", "PATCH", "/api/v1/groups/everyone",
			obj{"session_time_limit": "-1h"}, "session_time_limit"},
		{"bad ssh key", "POST", "/api/v1/users",
			obj{"username": "bob", "ssh_public_keys": []string{testSSHKey, "ssh-ed25519 not-base64"}}, "ssh_public_keys[1]"},
		{"bad ssh key in a patch", "PATCH", "/api/v1/users/alice",
			obj{"ssh_public_keys": []string{"hello"}}, "ssh_public_keys[0]"},
		{"bad attribute key", "POST", "/api/v1/users",
			obj{"username": "bob", "attributes": obj{"ok": "1", "not ok": "2"}}, "attributes.not ok"},
		{"bad web filter domain", "POST", "/api/v1/web-filter-policies",
			obj{"name": "p2", "denied_domains": []string{"example.com", "*.Example.com"}}, "denied_domains[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := h.in(t).problem(http.StatusBadRequest, tc.field, tc.method, tc.path, tc.body)
			if !strings.HasPrefix(p.Detail, tc.field+": ") {
				t.Errorf("detail %q does not start with the field", p.Detail)
			}
		})
	}
	if after := h.outboxRows(); after != before {
		t.Errorf("outbox grew from %d to %d: refused changes must announce nothing", before, after)
	}
}

func TestServerPoolWorkspaceNeedsNoImage(t *testing.T) {
	h := newHarness(t)
	h.create("pools", obj{"name": "desktops", "type": "server"})
	ws := h.create("workspaces", obj{"name": "rdp", "server_pool": "desktops"})
	if ws.str("image") != "" || ws["cores"] != domain.WorkspaceCoresDefault || ws["memory_mb"] != float64(domain.WorkspaceMemoryMBDefault) {
		t.Errorf("server-pool workspace %v", ws)
	}
	// It cannot leave its pool without an image to run instead.
	p := h.problem(http.StatusBadRequest, "image", "PATCH", "/api/v1/workspaces/rdp", obj{"server_pool": nil})
	if !strings.Contains(p.Detail, "server_pool") {
		t.Errorf("detail %q does not say why", p.Detail)
	}
	h.must(200, "PATCH", "/api/v1/workspaces/rdp", obj{"server_pool": nil, "image": "greenroom/demo:latest"}, &ws)
	if ws["server_pool"] != nil || ws.str("image") != "greenroom/demo:latest" {
		t.Errorf("workspace %v", ws)
	}
	h.problem(http.StatusBadRequest, "image", "PATCH", "/api/v1/workspaces/rdp", obj{"image": ""})
	h.problem(http.StatusBadRequest, "image", "POST", "/api/v1/workspaces", obj{"name": "none"})
	h.problem(http.StatusBadRequest, "image", "POST", "/api/v1/workspaces", obj{"name": "none", "image": "", "server_pool": nil})
}

func TestWorkspaceRevisionFollowsWhatShapesItsContainers(t *testing.T) {
	h := newHarness(t)
	h.create("web-filter-policies", obj{"name": "strict", "default_allow": false})
	ws := h.create("workspaces", obj{"name": "demo", "image": "greenroom/demo:1"})
	revision := func(want float64, step string) {
		t.Helper()
		var got obj
		h.must(200, "GET", "/api/v1/workspaces/demo", nil, &got)
		if got["revision"] != want || ws["revision"] != want {
			t.Errorf("after %s: revision %v (PATCH answered %v), want %v", step, got["revision"], ws["revision"], want)
		}
	}
	revision(1, "create")
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"enabled": false}, &ws)
	revision(1, "disabling it")
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"enabled": true, "image": "greenroom/demo:1"}, &ws)
	revision(1, "enabling it with the same image")
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"image": "greenroom/demo:2"}, &ws)
	revision(2, "changing the image")
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"home_directory": "/home/user"}, &ws)
	revision(3, "changing the home directory")
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"web_filter_policy": "strict"}, &ws)
	revision(4, "giving it a web filter policy")
	h.must(200, "PATCH", "/api/v1/web-filter-policies/strict", obj{"name": "tight"}, nil)
	h.must(200, "GET", "/api/v1/workspaces/demo", nil, &ws)
	// Its containers are given the policy with its name.
	revision(5, "renaming its policy")
	if ws.str("web_filter_policy") != "tight" {
		t.Errorf("workspace names policy %v after the rename", ws["web_filter_policy"])
	}
	h.must(200, "PATCH", "/api/v1/web-filter-policies/tight", obj{"allowed_domains": []string{"example.com"}}, nil)
	h.must(200, "GET", "/api/v1/workspaces/demo", nil, &ws)
	revision(6, "changing its policy's domains")
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"web_filter_policy": nil}, &ws)
	revision(7, "clearing its policy")
	if ws["web_filter_policy"] != nil {
		t.Errorf("policy not cleared: %v", ws)
	}
}

// TestWebFilterPolicyChangeAnnouncesItsWorkspaces: a workspace's staged
// containers carry its policy, name and content, so a change of either is
// a change of each workspace using it, announced as such.
func TestWebFilterPolicyChangeAnnouncesItsWorkspaces(t *testing.T) {
	h := newHarness(t)
	policy := h.create("web-filter-policies", obj{"name": "strict"})
	uses := h.create("workspaces", obj{"name": "uses", "image": "x", "web_filter_policy": "strict"})
	h.create("workspaces", obj{"name": "other", "image": "x"})
	h.relayOnce()
	c := h.streamConsumer("greenroom.config.changed.>")
	for range 3 {
		nextEvent(t, c)
	}

	h.must(200, "PATCH", "/api/v1/web-filter-policies/strict", obj{"default_allow": false}, nil)
	h.must(200, "PATCH", "/api/v1/web-filter-policies/strict", obj{"name": "tight"}, nil)
	if n := h.relayOnce(); n != 4 {
		t.Fatalf("relay published %d events, want 4", n)
	}
	for i, want := range []events.ConfigChanged{
		{Kind: "workspace", Op: "updated", ID: uses.str("id"), Name: "uses"},
		{Kind: "web_filter_policy", Op: "updated", ID: policy.str("id"), Name: "strict"},
		{Kind: "workspace", Op: "updated", ID: uses.str("id"), Name: "uses"},
		{Kind: "web_filter_policy", Op: "updated", ID: policy.str("id"), Name: "tight"},
	} {
		msg := nextEvent(t, c)
		var got events.ConfigChanged
		h.decodeEvent(msg.Data(), &got)
		if got.Kind != want.Kind || got.Op != want.Op || got.ID != want.ID || got.Name != want.Name ||
			msg.Subject() != "greenroom.config.changed."+want.Kind {
			t.Errorf("event %d on %s: %+v, want %+v", i, msg.Subject(), got, want)
		}
	}
}

func TestWebFilterPolicyInUseCannotBeDeleted(t *testing.T) {
	h := newHarness(t)
	h.create("web-filter-policies", obj{"name": "strict"})
	h.create("groups", obj{"name": "kiosk", "web_filter_policy": "strict"})
	h.create("groups", obj{"name": "lab", "web_filter_policy": "strict"})
	h.create("workspaces", obj{"name": "browser", "image": "x", "web_filter_policy": "strict"})
	before := h.outboxRows()

	p := h.problem(http.StatusConflict, "", "DELETE", "/api/v1/web-filter-policies/strict", nil)
	for _, want := range []string{`group(s) "kiosk", "lab"`, `workspace(s) "browser"`} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail %q does not name %s", p.Detail, want)
		}
	}
	h.must(200, "PATCH", "/api/v1/groups/kiosk", obj{"web_filter_policy": nil}, nil)
	h.must(204, "DELETE", "/api/v1/groups/lab", nil, nil)
	p = h.problem(http.StatusConflict, "", "DELETE", "/api/v1/web-filter-policies/strict", nil)
	if strings.Contains(p.Detail, "group") || !strings.Contains(p.Detail, `workspace(s) "browser"`) {
		t.Errorf("detail %q", p.Detail)
	}
	if after := h.outboxRows(); after != before+2 {
		t.Errorf("outbox grew from %d to %d: only the two group changes are announced", before, after)
	}
	h.must(200, "PATCH", "/api/v1/workspaces/browser", obj{"web_filter_policy": nil}, nil)
	h.must(204, "DELETE", "/api/v1/web-filter-policies/strict", nil, nil)
	h.must(404, "GET", "/api/v1/web-filter-policies/strict", nil, nil)
}

func TestGroupSessionLimitsAreDurationsStoredAsIntervals(t *testing.T) {
	h := newHarness(t)
	g := h.create("groups", obj{"name": "shift", "session_time_limit": "8h", "keepalive_expiration": "90s"})
	if g.str("session_time_limit") != "8h0m0s" || g.str("keepalive_expiration") != "1m30s" {
		t.Errorf("group %v", g)
	}
	var stored struct {
		TimeLimit string `db:"session_time_limit"`
		Keepalive string `db:"keepalive_expiration"`
	}
	if err := h.deps.DB.Get(&stored, `SELECT session_time_limit::text AS session_time_limit, keepalive_expiration::text AS keepalive_expiration
		FROM groups WHERE name = 'shift'`); err != nil {
		t.Fatal(err)
	}
	if stored.TimeLimit != "08:00:00" || stored.Keepalive != "00:01:30" {
		t.Errorf("stored intervals %+v", stored)
	}
	h.must(200, "PATCH", "/api/v1/groups/shift", obj{"session_time_limit": "1h30m", "keepalive_expiration": nil}, &g)
	if g.str("session_time_limit") != "1h30m0s" || g["keepalive_expiration"] != nil {
		t.Errorf("patched group %v", g)
	}
	plain := h.create("groups", obj{"name": "plain"})
	if plain["session_time_limit"] != nil || plain["keepalive_expiration"] != nil || plain["web_filter_policy"] != nil {
		t.Errorf("a group limits nothing unless told: %v", plain)
	}
}

// The smallest staging config a user can write, with the smallest group,
// serves that group's users staged: its permissions are the group's.
func TestSmallestStagingConfigMatchesADefaultGroup(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	sc := h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})
	defaults := domain.GroupCreate{}.Group().Permissions
	for field, want := range map[string]bool{
		"allow_audio": defaults.AllowAudio, "allow_clipboard_down": defaults.AllowClipboardDown,
		"allow_clipboard_up": defaults.AllowClipboardUp, "allow_downloads": defaults.AllowDownloads,
		"allow_microphone": defaults.AllowMicrophone, "allow_uploads": defaults.AllowUploads,
		"allow_gamepad": defaults.AllowGamepad,
	} {
		if sc[field] != want || w.group[field] != want {
			t.Errorf("%s: staging config %v, default group %v, GroupCreate{}.Group() %v", field, sc[field], w.group[field], want)
		}
	}
}

func TestUserSSHKeysAndAttributesAreReplacedWhole(t *testing.T) {
	h := newHarness(t)
	u := h.create("users", obj{"username": "alice"})
	if keys, _ := u["ssh_public_keys"].([]any); keys == nil || len(keys) != 0 {
		t.Errorf("new user's keys %v", u["ssh_public_keys"])
	}
	if attrs, _ := u["attributes"].(map[string]any); attrs == nil || len(attrs) != 0 {
		t.Errorf("new user's attributes %v", u["attributes"])
	}
	h.must(200, "PATCH", "/api/v1/users/alice", obj{"ssh_public_keys": []string{testSSHKey}, "attributes": obj{"department": "design", "floor": "3"}}, &u)
	h.must(200, "PATCH", "/api/v1/users/alice", obj{"attributes": obj{"department": "ops"}}, &u)
	h.must(200, "GET", "/api/v1/users/alice", nil, &u)
	keys, _ := u["ssh_public_keys"].([]any)
	attrs, _ := u["attributes"].(map[string]any)
	if len(keys) != 1 || keys[0] != testSSHKey || len(attrs) != 1 || attrs["department"] != "ops" {
		t.Errorf("user %v", u)
	}
}

func TestSessionsSayWhyTheyWereMadeOnDemandAndWhenTheyEnd(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	sc := h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})
	staged := h.insertSession(w, "", sessions.Staged, sc.str("id"))
	onDemand := h.insertSessionWith(w, "r1", sessions.Running, sessions.New{OnDemandReason: "incompatible:inject_ssh_keys"})
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	h.deps.DB.MustExec(`UPDATE sessions SET expires_at = $2 WHERE id = $1`, onDemand.ID, expires)

	var got obj
	h.must(200, "GET", "/api/v1/sessions/"+onDemand.ID, nil, &got)
	if got.str("on_demand_reason") != "incompatible:inject_ssh_keys" || got.str("expires_at") != expires.Format(time.RFC3339) {
		t.Errorf("on-demand session %v", got)
	}
	h.must(200, "GET", "/api/v1/sessions/"+staged.ID, nil, &got)
	if _, ok := got["on_demand_reason"]; !ok || got["on_demand_reason"] != nil {
		t.Errorf("staged session's on_demand_reason %v, want null", got["on_demand_reason"])
	}
}
