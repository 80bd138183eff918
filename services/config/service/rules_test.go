package service_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/sessions"
)

func TestBadBodyNamesTheField(t *testing.T) {
	h := newHarness(t)
	h.world()
	h.create("pools", obj{"name": "desktops", "type": "server"})
	agent := `"name":"a1","zone":"eu","docker_endpoint":"tcp://10.0.0.9:2375","cores":1,"memory_mb":512`
	for _, tc := range []struct {
		name, method, path, body, field string
	}{
		{"unknown field", "POST", "/api/v1/zones", `{"name":"us","colour":"red"}`, "colour"},
		{"read-only field", "POST", "/api/v1/zones", `{"name":"us","id":"x"}`, "id"},
		{"wrong type", "POST", "/api/v1/zones", `{"name":"us","search_alternate_zones":"yes"}`, "search_alternate_zones"},
		{"missing required", "POST", "/api/v1/pools", `{"name":"p1"}`, "type"},
		{"null for a required field", "POST", "/api/v1/pools", `{"name":null,"type":"server"}`, "name"},
		{"out of range", "POST", "/api/v1/agents", `{` + agent + `,"memory_mb":0}`, "memory_mb"},
		{"out of 32-bit range", "POST", "/api/v1/groups", `{"name":"g1","priority":4294967296}`, "priority"},
		{"bad enum", "POST", "/api/v1/zones", `{"name":"us","load_balancing":"round_robin"}`, "load_balancing"},
		{"bad name pattern", "POST", "/api/v1/workspaces", `{"name":"My Desktop","image":"x"}`, "name"},
		{"bad username pattern", "POST", "/api/v1/users", `{"username":"Alice"}`, "username"},
		{"empty reference", "POST", "/api/v1/agents", `{` + strings.Replace(agent, `"zone":"eu"`, `"zone":""`, 1) + `}`, "zone"},
		{"unknown reference", "POST", "/api/v1/agents", `{` + strings.Replace(agent, `"zone":"eu"`, `"zone":"mars"`, 1) + `}`, "zone"},
		{"reference of the wrong type", "POST", "/api/v1/agents", `{` + agent + `,"pool":"desktops"}`, "pool"},
		{"unknown group", "POST", "/api/v1/users", `{"username":"bob","groups":["everyone","admins"]}`, "groups"},
		{"nested", "POST", "/api/v1/workspaces", `{"name":"w2","image":"x","volume_mappings":{"/data":{"mode":"rw"}}}`, "volume_mappings./data.bind"},
		{"null in a patch", "PATCH", "/api/v1/zones/eu", `{"priority":null}`, "priority"},
		{"negative cores in a patch", "PATCH", "/api/v1/workspaces/demo", `{"cores":-1}`, "cores"},
		{"session request", "POST", "/api/v1/sessions", `{"user":"alice","workspace":"demo"}`, "zone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := h.in(t).problem(http.StatusBadRequest, tc.field, tc.method, tc.path, tc.body)
			if !strings.HasPrefix(p.Detail, tc.field+": ") {
				t.Errorf("detail %q does not start with the field", p.Detail)
			}
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		h.in(t).problem(http.StatusBadRequest, "", "POST", "/api/v1/zones", `name=us`)
	})
}

func TestDuplicateNameIsConflict(t *testing.T) {
	h := newHarness(t)
	h.world()
	h.create("pools", obj{"name": "p1", "type": "docker_agent"})
	h.create("agents", obj{"name": "a1", "zone": "eu", "docker_endpoint": "tcp://10.0.0.9:2375", "cores": 1, "memory_mb": 512})
	h.create("servers", obj{"name": "s1", "zone": "eu", "address": "10.0.0.1"})
	h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})
	before := h.outboxRows()
	for _, tc := range []struct{ collection, body string }{
		{"zones", `{"name":"eu"}`},
		{"pools", `{"name":"p1","type":"server"}`},
		{"agents", `{"name":"a1","zone":"eu","docker_endpoint":"tcp://10.0.0.9:2376","cores":2,"memory_mb":512}`},
		{"servers", `{"name":"s1","zone":"eu","address":"10.0.0.2"}`},
		{"workspaces", `{"name":"demo","image":"other"}`},
		{"groups", `{"name":"everyone"}`},
		{"users", `{"username":"alice"}`},
		{"staging-configs", `{"zone":"eu","workspace":"demo","desired_sessions":3}`},
	} {
		p := h.problem(http.StatusConflict, "", "POST", "/api/v1/"+tc.collection, tc.body)
		if !strings.Contains(p.Detail, "already exists") {
			t.Errorf("%s: detail %q", tc.collection, p.Detail)
		}
	}
	h.create("zones", obj{"name": "us"})
	h.problem(http.StatusConflict, "", "PATCH", "/api/v1/zones/us", obj{"name": "eu"})
	if after := h.outboxRows(); after != before+1 {
		t.Errorf("outbox grew from %d to %d: refused changes must announce nothing", before, after)
	}
}

func TestStagingConfigRefusedForRequestHostZone(t *testing.T) {
	h := newHarness(t)
	h.create("workspaces", obj{"name": "demo", "image": "x"})
	h.create("zones", obj{"name": "default"}) // both settings at $request_host$
	h.create("zones", obj{"name": "half", "allow_origin_domain": "half.example.test"})

	for _, zone := range []string{"default", "half"} {
		p := h.problem(http.StatusBadRequest, "zone", "POST", "/api/v1/staging-configs", obj{"zone": zone, "workspace": "demo", "desired_sessions": 1})
		for _, want := range []string{"$request_host$", "staged sessions", zone} {
			if !strings.Contains(p.Detail, want) {
				t.Errorf("zone %s: detail %q does not mention %q", zone, p.Detail, want)
			}
		}
	}
	var list struct{ Items []obj }
	h.must(200, "GET", "/api/v1/staging-configs", nil, &list)
	if len(list.Items) != 0 {
		t.Errorf("refused configs were stored: %v", list.Items)
	}

	h.must(200, "PATCH", "/api/v1/zones/half", obj{"upstream_auth_address": "auth.half.example.test"}, nil)
	h.must(201, "POST", "/api/v1/staging-configs", obj{"zone": "half", "workspace": "demo", "desired_sessions": 1}, nil)
}

func TestZoneCannotGoBackToRequestHostWhileStaged(t *testing.T) {
	h := newHarness(t)
	h.world()
	var sc obj
	h.must(201, "POST", "/api/v1/staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 2}, &sc)

	h.problem(http.StatusConflict, "allow_origin_domain", "PATCH", "/api/v1/zones/eu", obj{"allow_origin_domain": "$request_host$"})
	h.problem(http.StatusConflict, "upstream_auth_address", "PATCH", "/api/v1/zones/eu", obj{"priority": 3, "upstream_auth_address": "$request_host$"})
	var zone obj
	h.must(200, "GET", "/api/v1/zones/eu", nil, &zone)
	if zone.str("allow_origin_domain") == "$request_host$" || zone["priority"] != 100.0 {
		t.Errorf("a refused change was applied: %v", zone)
	}
	// Other changes, and other real domains, are fine.
	h.must(200, "PATCH", "/api/v1/zones/eu", obj{"priority": 3, "allow_origin_domain": "new.example.test"}, nil)

	// Once no staging config targets the zone, the default is allowed again.
	h.must(204, "DELETE", "/api/v1/staging-configs/"+sc.str("id"), nil, nil)
	h.must(200, "PATCH", "/api/v1/zones/eu", obj{"allow_origin_domain": "$request_host$"}, nil)
}

func TestDeleteOfReferencedRowIsConflict(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	h.create("pools", obj{"name": "p1", "type": "docker_agent"})
	h.create("agents", obj{"name": "a1", "zone": "eu", "pool": "p1", "docker_endpoint": "tcp://10.0.0.9:2375", "cores": 1, "memory_mb": 512})
	sc := h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})

	for path, referrer := range map[string]string{
		"/api/v1/zones/eu":        "agents",
		"/api/v1/pools/p1":        "agents",
		"/api/v1/workspaces/demo": "staging configs",
	} {
		p := h.problem(http.StatusConflict, "", "DELETE", path, nil)
		if !strings.Contains(p.Detail, referrer) {
			t.Errorf("DELETE %s: detail %q does not name %s", path, p.Detail, referrer)
		}
	}
	// A deleted staging config no session refers to does not hold its
	// workspace.
	h.must(204, "DELETE", "/api/v1/staging-configs/"+sc.str("id"), nil, nil)
	h.must(204, "DELETE", "/api/v1/workspaces/demo", nil, nil)

	ws := h.create("workspaces", obj{"name": "demo2", "image": "x"})
	w.workspace = ws
	h.insertSession(w, "r1", sessions.Running, "")
	p := h.problem(http.StatusConflict, "", "DELETE", "/api/v1/users/alice", nil)
	if !strings.Contains(p.Detail, "sessions") {
		t.Errorf("detail %q does not name sessions", p.Detail)
	}
	// A group is not held by its members.
	h.must(204, "DELETE", "/api/v1/groups/everyone", nil, nil)
	var alice obj
	h.must(200, "GET", "/api/v1/users/alice", nil, &alice)
	if groups, _ := alice["groups"].([]any); len(groups) != 0 {
		t.Errorf("alice still in %v", groups)
	}
}

// A workspace whose sessions have all ended can be deleted, even when they
// came from a staging config deleted before; its ended sessions go with it.
func TestWorkspaceWithOnlyEndedSessionsCanBeDeleted(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	sc := h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})
	live := h.insertSession(w, "", sessions.Staged, sc.str("id"))
	ended := []sessions.Session{
		h.insertSession(w, "r1", sessions.Running, ""),
		h.insertSession(w, "", sessions.Failed, sc.str("id")),
	}
	// Ended as the provisioner ends them (straight SQL: the lifecycle
	// goes through destroying).
	h.deps.DB.MustExec(`UPDATE sessions SET status = 'destroyed' WHERE id = $1`, ended[0].ID)
	h.must(204, "DELETE", "/api/v1/staging-configs/"+sc.str("id"), nil, nil)

	p := h.problem(http.StatusConflict, "", "DELETE", "/api/v1/workspaces/demo", nil)
	if !strings.Contains(p.Detail, `workspace "demo" has 1 live session(s)`) {
		t.Errorf("detail %q does not count the live session", p.Detail)
	}
	h.deps.DB.MustExec(`UPDATE sessions SET status = 'destroyed' WHERE id = $1`, live.ID)
	h.must(204, "DELETE", "/api/v1/workspaces/demo", nil, nil)
	h.must(404, "GET", "/api/v1/workspaces/demo", nil, nil)
	for _, s := range append(ended, live) {
		h.must(404, "GET", "/api/v1/sessions/"+s.ID, nil, nil)
	}
	var configs int
	if err := h.deps.DB.Get(&configs, `SELECT count(*) FROM staging_configs WHERE id = $1`, sc.str("id")); err != nil || configs != 0 {
		t.Errorf("the deleted staging config is still stored (%d, %v)", configs, err)
	}
}

func TestStagingConfigShowsCurrentSessionsAndTheProvisionersStatus(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	sc := h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 3})
	if sc["current_sessions"] != 0.0 || sc.str("status") != "filling" || sc["last_error_at"] != nil || sc["expiration_hours"] != 24.0 {
		t.Errorf("new config: %v", sc)
	}
	h.insertSession(w, "", sessions.Staged, sc.str("id"))
	h.insertSession(w, "", sessions.Staged, sc.str("id"))
	h.insertSession(w, "", sessions.Provisioning, sc.str("id"))
	h.deps.DB.MustExec(`UPDATE staging_configs SET status = 'shortfall', last_error = 'agents lack capacity: 0.5 cores free, 1 needed', last_error_at = now() WHERE id = $1`, sc.str("id"))

	var got obj
	h.must(200, "GET", "/api/v1/staging-configs/"+sc.str("id"), nil, &got)
	if got["current_sessions"] != 2.0 || got.str("status") != "shortfall" || !strings.Contains(got.str("last_error"), "capacity") || got["last_error_at"] == nil {
		t.Errorf("staging config: %v", got)
	}
	var list struct{ Items []obj }
	h.must(200, "GET", "/api/v1/sessions?staging_config="+sc.str("id")+"&status=staged", nil, &list)
	for _, s := range list.Items {
		if s["user"] != nil || s["request_id"] != nil || s.str("origin") != "staged" {
			t.Errorf("staged session shows a user or request: %v", s)
		}
	}
	if len(list.Items) != 2 {
		t.Errorf("%d staged sessions listed, want 2", len(list.Items))
	}
}

func TestUnauthorizedWithoutToken(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		opts []callOption
	}{
		{"no header", []callOption{withoutToken()}},
		{"wrong token", []callOption{withHeader("Authorization", "Bearer not-the-token")}},
		{"token as a prefix", []callOption{withHeader("Authorization", "Bearer "+h.token+"x")}},
		{"other scheme", []callOption{withHeader("Authorization", "Basic "+h.token)}},
		{"no scheme", []callOption{withHeader("Authorization", h.token)}},
	} {
		for _, call := range []struct{ method, path, body string }{
			{"GET", "/api/v1/zones", ""},
			{"POST", "/api/v1/zones", `{"name":"eu"}`},
			{"DELETE", "/api/v1/sessions/not-even-a-uuid", ""},
		} {
			var body any
			if call.body != "" {
				body = call.body
			}
			res := h.call(call.method, call.path, body, tc.opts...)
			if res.Status != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") ||
				res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %s %s: %d %v", tc.name, call.method, call.path, res.Status, res.Header)
			}
		}
	}
	var zones struct{ Items []obj }
	h.must(200, "GET", "/api/v1/zones", nil, &zones)
	if len(zones.Items) != 0 {
		t.Errorf("an unauthorized create went through: %v", zones.Items)
	}
	h.must(200, "GET", "/healthz", nil, nil, withoutToken())
}

// TestAdminConsoleIsServedAtRootWithoutInlineScript (issue 14, point 4):
// the console is one page with the seeds' words, its script and styles are
// files of the binary, and its Content-Security-Policy allows no inline
// script or style (the browser test drives it: tests/e2e/console_test.go).
func TestAdminConsoleIsServedAtRootWithoutInlineScript(t *testing.T) {
	h := newHarness(t)
	res := h.call("GET", "/", nil, withoutToken())
	if res.Status != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %v", res.Status, res.Header)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("Content-Security-Policy %q must allow only the console's own script", csp)
	}
	page := string(res.Body)
	scripts := regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(page, -1)
	if len(scripts) != 1 || !strings.Contains(scripts[0][1], `src="/console/app.js"`) || strings.TrimSpace(scripts[0][2]) != "" {
		t.Errorf("the page's scripts are %q, want only /console/app.js and nothing inline", scripts)
	}
	if regexp.MustCompile(`\son[a-z]+=`).MatchString(page) || strings.Contains(page, "<style") || strings.Contains(page, " style=") {
		t.Error("the page has an inline event handler or style")
	}
	for _, want := range []string{
		// The navigation of the seeds.
		">Staging<", ">Zones<", ">Infrastructure<", ">Pools<", ">Docker Agents<", ">Servers<", ">Workspaces<", ">Groups<", ">Users<", ">Sessions<", ">Violations<",
		// Staging's button and form, in the seed's words.
		">Create New Config<", ">Zone<", ">Workspace<", ">Desired Sessions<", ">Expiration (Hours)<", " Allow Audio<", " Allow Clipboard Down<",
		" Allow Clipboard Up<", " Allow Downloads<", " Allow Microphone<", " Allow Uploads<", " Allow Gamepad<", ">Submit<",
		">Current Sessions<", ">Shortfall Reason<",
		// Zones and Pools.
		">Allow Origin Domain<", ">Upstream Auth Address<", " Search Alternate Zones<", ">Add<", ">Name<", ">Type<", " Server Assignment<", ">Labels<", ">Assign<",
		// Sessions.
		">On Demand Reason<", "Hide ended sessions",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	js := h.call("GET", "/console/app.js", nil, withoutToken())
	if js.Status != 200 || !strings.Contains(js.Header.Get("Content-Type"), "javascript") || !strings.Contains(string(js.Body), "/api/v1/events") {
		t.Errorf("GET /console/app.js: %d %s", js.Status, js.Header.Get("Content-Type"))
	}
	if css := h.call("GET", "/console/style.css", nil, withoutToken()); css.Status != 200 || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
		t.Errorf("GET /console/style.css: %d %s", css.Status, css.Header.Get("Content-Type"))
	}
	if raw := h.call("GET", "/console/console.html", nil, withoutToken()); raw.Status != 404 {
		t.Errorf("the raw template is served: %d", raw.Status)
	}
}

func TestMetricsMeasureRequestsByRouteAndStatus(t *testing.T) {
	h := newHarness(t)
	h.problem(http.StatusNotFound, "", "GET", "/api/v1/zones/nowhere", nil)
	h.problem(http.StatusNotFound, "", "GET", "/api/v1/zones/elsewhere", nil)
	res := h.call("GET", "/metrics", nil, withoutToken())
	want := `greenroom_http_request_duration_seconds_count{route="GET /api/v1/zones/{name}",status="404"} 2`
	if !strings.Contains(string(res.Body), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// TestRequestHostRuleHoldsUnderConcurrency races, for many zones, a staging
// config being created against the zone going back to $request_host$: one
// of the two must lose, never both win.
func TestRequestHostRuleHoldsUnderConcurrency(t *testing.T) {
	h := newHarness(t)
	h.create("workspaces", obj{"name": "demo", "image": "x"})
	const zones = 20
	var answers []<-chan response
	for i := range zones {
		name := fmt.Sprintf("z%d", i)
		h.stagingZone(name)
		answers = append(answers,
			h.sendAsync("POST", "/api/v1/staging-configs", obj{"zone": name, "workspace": "demo", "desired_sessions": 1}),
			h.sendAsync("PATCH", "/api/v1/zones/"+name, obj{"allow_origin_domain": "$request_host$"}))
	}
	for i := 0; i < len(answers); i += 2 {
		created, patched := h.answer(answers[i]).Status, h.answer(answers[i+1]).Status
		if !(created == http.StatusCreated && patched == http.StatusConflict) && !(created == http.StatusBadRequest && patched == http.StatusOK) {
			t.Errorf("zone z%d: staging config %d, zone change %d: exactly one must win", i/2, created, patched)
		}
	}
	var broken int
	if err := h.deps.DB.Get(&broken, `SELECT count(*) FROM staging_configs sc JOIN zones z ON z.id = sc.zone_id
		WHERE sc.deleted_at IS NULL AND '$request_host$' IN (z.allow_origin_domain, z.upstream_auth_address)`); err != nil {
		t.Fatal(err)
	}
	if broken != 0 {
		t.Errorf("%d staging configs target a $request_host$ zone", broken)
	}
}
