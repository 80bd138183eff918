package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/apptest"
)

// zoneDomain is the e2e zones' allow_origin_domain; the gateway serves
// their sessions on it only.
const zoneDomain = "greenroom.test"

// user is a browser at the gateway: every host name it opens is dialled at
// the gateway's address (as DNS would for the zone's domain), and it keeps
// cookies.
func (g *greenroom) user(t *testing.T) *http.Client {
	t.Helper()
	gw := mustURL(t, g.gw.URL)
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, gw.Host)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// onDomain is u moved to the zone's domain, at the gateway's port.
func (g *greenroom) onDomain(t *testing.T, path string) string {
	return "http://" + net.JoinHostPort(zoneDomain, mustURL(t, g.gw.URL).Port()) + path
}

func signInAt(t *testing.T, c *http.Client, base, user, password string) int {
	t.Helper()
	res, err := c.PostForm(base+"/login", url.Values{"username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

func fetch(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// gatewayWorld makes zone-a, served on zoneDomain with sign-ins checked
// at the config service, its agent, the demo workspace with one staged
// session, and alice and bob with passwords "<name>-secret-pw". It
// returns the staging config.
func (g *greenroom) gatewayWorld(t *testing.T) string {
	t.Helper()
	auth := mustURL(t, g.api.URL).Host
	g.create("/api/v1/zones", map[string]any{"name": "zone-a", "priority": 1,
		"allow_origin_domain": zoneDomain, "upstream_auth_address": auth})
	g.create("/api/v1/agents", map[string]any{"name": "agent-a", "zone": "zone-a",
		"docker_endpoint": "unix:///var/run/docker.sock", "cores": 8, "memory_mb": 8192})
	// The demo image's HTTP assign hook, as make up's demo has: the
	// hand-off is a request, not a docker exec.
	ws := workspace("demo")
	ws["assign_hook"] = map[string]any{"path": "/.greenroom/assign", "timeout": "5s"}
	g.create("/api/v1/workspaces", ws)
	g.create("/api/v1/groups", map[string]any{"name": "everyone", "priority": 100, "keepalive_expiration": "10m"})
	for _, u := range []string{"alice", "bob"} {
		g.create("/api/v1/users", map[string]any{"username": u, "groups": []string{"everyone"}, "password": u + "-secret-pw"})
	}
	pool := g.create("/api/v1/staging-configs", stagingConfig("zone-a", "demo", 1))["id"].(string)
	g.waitStaged(pool, 1, 60*time.Second)
	return pool
}

// TestTheGatewayIsTheOnlyWayIntoASessionAndOnlyForItsUser (issue 13): a
// session's url is at the gateway, on its zone's domain; its user, signed
// in with the password an admin set, gets the desktop, which names them
// (X-Greenroom-User); another user gets 403, an unknown session 404, and
// the sign-in was checked at the zone's upstream_auth_address (the config
// service's /api/v1/session-auth). The use keeps the session alive.
func TestTheGatewayIsTheOnlyWayIntoASessionAndOnlyForItsUser(t *testing.T) {
	g := start(t)
	pool := g.gatewayWorld(t)

	s, _ := g.session(t, "alice", "demo", "zone-a")
	id := s["id"].(string)
	if want := g.onDomain(t, "/session/"+id+"/"); s["url"] != want {
		t.Fatalf("session url %v, want %s (the gateway, on the zone's domain)", s["url"], want)
	}

	alice := g.user(t)
	if code, _ := fetch(t, alice, s["url"].(string)); code != http.StatusSeeOther {
		t.Fatalf("before signing in: %d, want a redirect to the sign-in page", code)
	}
	if code := signInAt(t, alice, g.onDomain(t, ""), "alice", "wrong password"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %d, want 401", code)
	}
	if code := signInAt(t, alice, g.onDomain(t, ""), "alice", "alice-secret-pw"); code != http.StatusSeeOther {
		t.Fatalf("alice's sign-in: %d, want 303", code)
	}
	code, body := fetch(t, alice, s["url"].(string))
	if code != http.StatusOK || !strings.Contains(body, "Assigned to alice") || !strings.Contains(body, "Viewed through the gateway by alice") {
		t.Fatalf("alice's session: %d\n%s", code, body)
	}
	if code, body := fetch(t, alice, g.onDomain(t, "/")); code != http.StatusOK || !strings.Contains(body, id) {
		t.Errorf("alice's dashboard does not list her session: %d\n%s", code, body)
	}
	// Served on the zone's domain only.
	if code, _ := fetch(t, alice, g.gw.URL+"/session/"+id+"/"); code != http.StatusMisdirectedRequest {
		t.Errorf("on another host: %d, want 421", code)
	}

	bob := g.user(t)
	signInAt(t, bob, g.onDomain(t, ""), "bob", "bob-secret-pw")
	if code, _ := fetch(t, bob, s["url"].(string)); code != http.StatusForbidden {
		t.Errorf("bob on alice's session: %d, want 403", code)
	}
	if code, _ := fetch(t, bob, g.onDomain(t, "/session/00000000-0000-4000-8000-000000000000/")); code != http.StatusNotFound {
		t.Errorf("an unknown session: %d, want 404", code)
	}
	// A staged session nobody was given is not there at all.
	g.waitStaged(pool, 1, 60*time.Second)
	_, list := g.call(http.MethodGet, "/api/v1/sessions?staging_config="+pool+"&status=staged", nil)
	for _, item := range list["items"].([]any) {
		staged := item.(map[string]any)["id"].(string)
		if code, _ := fetch(t, alice, g.onDomain(t, "/session/"+staged+"/")); code != http.StatusNotFound {
			t.Errorf("a staged session without user: %d, want 404", code)
		}
	}

	// The dashboard: a tile launches a session (a staged one, handed over)
	// and opens it; End ends it and its container goes.
	res, err := alice.PostForm(g.onDomain(t, "/launch"), url.Values{"workspace": {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	launched := strings.TrimSuffix(strings.TrimPrefix(res.Header.Get("Location"), "/session/"), "/")
	if res.StatusCode != http.StatusSeeOther || launched == "" || launched == id {
		t.Fatalf("launch from the dashboard: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if code, body := fetch(t, alice, g.onDomain(t, "/session/"+launched+"/")); code != http.StatusOK || !strings.Contains(body, "alice") {
		t.Fatalf("the launched session: %d\n%s", code, body)
	}
	if res, err := alice.PostForm(g.onDomain(t, "/sessions/"+launched+"/end"), nil); err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("End: %v %v", res, err)
	}
	apptest.Eventually(t, 60*time.Second, "the ended session destroyed", func() bool {
		var status string
		_ = g.env.DB.Get(&status, `SELECT status FROM sessions WHERE id = $1`, launched)
		return status == "destroyed"
	})

	// The traffic was announced as a keepalive of the session.
	apptest.Eventually(t, 30*time.Second, "a keepalive from the gateway", func() bool {
		var n int
		_ = g.env.DB.Get(&n, `SELECT count(*) FROM sessions
			WHERE id = $1 AND keepalive_at > running_at + keepalive_expiration`, id)
		return n == 1
	})
}
