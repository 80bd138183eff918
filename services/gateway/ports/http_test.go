package ports_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/services/gateway/app"
	"github.com/greenroom-dev/greenroom/services/gateway/domain"
	"github.com/greenroom-dev/greenroom/services/gateway/ports"
)

// The use cases run over in-memory adapters here; what is tested is the
// HTTP side: cookies, redirects, statuses, and the proxying of HTTP and
// WebSocket to a real upstream server.
type memory struct {
	mu       sync.Mutex
	route    map[string]app.Route
	tokens   map[string]signin.User
	upstream *url.URL
}

func (m *memory) Route(_ context.Context, id string) (app.Route, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.route[id]
	if !ok {
		return r, app.ErrUnknownSession
	}
	return r, nil
}
func (m *memory) OfUser(context.Context, string) ([]app.SessionSummary, error) { return nil, nil }
func (m *memory) CheckPassword(_ context.Context, u, p string) (signin.User, error) {
	if p != u+"-password" {
		return signin.User{}, signin.ErrBadCredentials
	}
	return signin.User{ID: "id-" + u, Name: u}, nil
}
func (m *memory) Create(_ context.Context, userID string, _ time.Duration) (string, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tok := uuid.NewString()
	m.tokens[tok] = signin.User{ID: userID, Name: strings.TrimPrefix(userID, "id-")}
	return tok, time.Now().Add(time.Hour), nil
}
func (m *memory) Lookup(_ context.Context, tok string) (signin.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.tokens[tok]
	if !ok {
		return u, signin.ErrUnknownToken
	}
	return u, nil
}
func (m *memory) Delete(_ context.Context, tok string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tokens, tok)
	return nil
}

// Check grants a session to the user its route names.
func (m *memory) Check(ctx context.Context, _ *url.URL, tok, id string) (app.Grant, error) {
	u, err := m.Lookup(ctx, tok)
	if err != nil {
		return app.Grant{}, app.ErrUnauthorized
	}
	if r, _ := m.Route(ctx, id); r.UserID != u.ID {
		return app.Grant{}, app.ErrForbidden
	}
	return app.Grant{User: u.Name, UserID: u.ID, Upstream: m.upstream}, nil
}

func (m *memory) Keepalive(context.Context, string) error { return nil }

func (m *memory) Workspaces(context.Context) ([]app.Workspace, error) {
	return []app.Workspace{{Name: "demo"}}, nil
}

func (m *memory) Zones(context.Context) ([]domain.Zone, error) {
	return []domain.Zone{{Name: "zone-a", AllowOriginDomain: domain.RequestHost}}, nil
}

// Request hands the user a new session of theirs at once.
func (m *memory) Request(_ context.Context, user, _, _ string) (app.Launched, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.NewString()
	m.route[id] = app.Route{UserID: "id-" + user, Live: true, AllowOriginDomain: domain.RequestHost}
	return app.Launched{SessionID: id, URL: "http://127.0.0.1/session/" + id + "/"}, nil
}

func (m *memory) Destroy(_ context.Context, id, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.route[id]
	r.Live = false
	m.route[id] = r
	return nil
}

type gateway struct {
	mem      *memory
	url      string
	upstream string // the container's address, for comparisons
	alice    string // alice's session
	seen     chan *http.Request
}

func start(t testing.TB, tls bool) gateway {
	t.Helper()
	seen := make(chan *http.Request, 10)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			ctx := r.Context()
			for {
				typ, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				if err := c.Write(ctx, typ, append([]byte("echo "+r.Header.Get(ports.UserHeader)+": "), msg...)); err != nil {
					return
				}
			}
		}
		select {
		case seen <- r.Clone(context.Background()):
		default: // benchmarks do not read them
		}
		_, _ = io.WriteString(w, "desktop of "+r.Header.Get(ports.UserHeader)+" at "+r.URL.Path)
	}))
	t.Cleanup(upstream.Close)
	up, _ := url.Parse(upstream.URL)
	alice := uuid.NewString()
	m := &memory{route: map[string]app.Route{alice: {UserID: "id-alice", Live: true, AllowOriginDomain: "$request_host$"}},
		tokens: map[string]signin.User{}, upstream: up}
	gw := app.New(app.Config{}, app.Adapters{Sessions: m, SignIns: m, Auth: m, Keepalives: m, Catalog: m, Requests: m}, zap.NewNop())
	h := ports.NewHandler(ports.Config{Gateway: gw, Ops: http.NotFoundHandler(), Log: zap.NewNop()})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return gateway{mem: m, url: srv.URL, upstream: upstream.URL, alice: alice, seen: seen}
}

// browser is a client with a cookie jar that does not follow redirects.
func browser(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func signIn(t testing.TB, c *http.Client, base, user, password string) *http.Response {
	t.Helper()
	res, err := c.PostForm(base+"/login", url.Values{"username": {user}, "password": {password}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res
}

func get(t *testing.T, c *http.Client, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestSignInSetsAnHttpOnlySameSiteCookie(t *testing.T) {
	g := start(t, false)
	c := browser(t)
	if res := signIn(t, c, g.url, "alice", "wrong"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %d, want 401", res.StatusCode)
	}
	res := signIn(t, c, g.url, "alice", "alice-password")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("sign-in: %d to %q, want 303 to /", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == signin.CookieName {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure {
		t.Fatalf("cookie %+v, want HttpOnly, SameSite=Lax, not Secure over plain HTTP", cookie)
	}
	res, body := get(t, c, g.url+"/", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "alice") {
		t.Fatalf("dashboard: %d %s", res.StatusCode, body)
	}
}

func TestUnderTLSTheCookieIsSecure(t *testing.T) {
	g := start(t, true)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: tlsInsecure()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res := signIn(t, c, g.url, "alice", "alice-password")
	for _, ck := range res.Cookies() {
		if ck.Name == signin.CookieName && ck.Secure {
			return
		}
	}
	t.Fatalf("no Secure sign-in cookie under TLS: %v", res.Cookies())
}

func TestTheContainerSeesItsUserAndNeverTheSignIn(t *testing.T) {
	g := start(t, false)
	c := browser(t)
	signIn(t, c, g.url, "alice", "alice-password")
	res, body := get(t, c, g.url+"/session/"+g.alice+"/vnc.html?autoconnect=1",
		http.Header{ports.UserHeader: {"mallory"}, "Cookie": {"theme=dark"}})
	if res.StatusCode != http.StatusOK || body != "desktop of alice at /vnc.html" {
		t.Fatalf("proxied: %d %q", res.StatusCode, body)
	}
	r := <-g.seen
	if r.URL.RawQuery != "autoconnect=1" || r.Header.Get("X-Forwarded-Prefix") != "/session/"+g.alice {
		t.Errorf("upstream saw %s with prefix %q", r.URL, r.Header.Get("X-Forwarded-Prefix"))
	}
	if _, err := r.Cookie(signin.CookieName); err == nil || r.Header.Get("Authorization") != "" {
		t.Errorf("the container saw the user's sign-in: %v", r.Header)
	}
	if ck, err := r.Cookie("theme"); err != nil || ck.Value != "dark" {
		t.Errorf("the container lost the page's own cookie: %v", r.Header)
	}
}

func TestSessionsAreTheirUsersOnly(t *testing.T) {
	g := start(t, false)
	anon := browser(t)
	res, _ := get(t, anon, g.url+"/session/"+g.alice+"/", nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login?next=") {
		t.Errorf("not signed in: %d to %q, want a redirect to /login", res.StatusCode, res.Header.Get("Location"))
	}
	bob := browser(t)
	signIn(t, bob, g.url, "bob", "bob-password")
	if res, _ := get(t, bob, g.url+"/session/"+g.alice+"/", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("bob on alice's session: %d, want 403", res.StatusCode)
	}
	if res, _ := get(t, bob, g.url+"/session/"+uuid.NewString()+"/", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown session: %d, want 404", res.StatusCode)
	}
}

func TestWebSocketsAreProxiedFromTheSitesOwnPagesOnly(t *testing.T) {
	g := start(t, false)
	c := browser(t)
	signIn(t, c, g.url, "alice", "alice-password")
	wsURL := "ws" + strings.TrimPrefix(g.url, "http") + "/session/" + g.alice + "/websockify"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c, HTTPHeader: http.Header{"Origin": {g.url}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageBinary, []byte("frame")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "echo alice: frame" {
		t.Fatalf("echo: %q %v", msg, err)
	}

	_, res, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c, HTTPHeader: http.Header{"Origin": {"https://evil.example.net"}}})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a WebSocket from another site: %v %v, want 403", res, err)
	}
}

func TestFailedSignInsAreAnsweredTooManyRequests(t *testing.T) {
	g := start(t, false)
	c := browser(t)
	var last int
	for range app.FailedSignInsDefault + 1 {
		last = signIn(t, c, g.url, "alice", "guess").StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", app.FailedSignInsDefault+1, last)
	}
}

func tlsInsecure() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec // a test server's own certificate

func TestATileLaunchesASessionThatOpensAndItsUserEndsIt(t *testing.T) {
	g := start(t, false)
	c := browser(t)
	signIn(t, c, g.url, "alice", "alice-password")
	res, err := c.PostForm(g.url+"/launch", url.Values{"workspace": {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	loc := res.Header.Get("Location")
	id, _, ok := domain.SessionPath(loc)
	if res.StatusCode != http.StatusSeeOther || !ok {
		t.Fatalf("launch: %d to %q, want a redirect to the session", res.StatusCode, loc)
	}
	if res, body := get(t, c, g.url+loc, nil); res.StatusCode != http.StatusOK || !strings.Contains(body, "desktop of alice") {
		t.Fatalf("the launched session: %d %q", res.StatusCode, body)
	}
	bob := browser(t)
	signIn(t, bob, g.url, "bob", "bob-password")
	if res, err := bob.PostForm(g.url+"/sessions/"+id+"/end", nil); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("bob ending alice's session: %v %v, want 403", res, err)
	}
	req, _ := http.NewRequest(http.MethodPost, g.url+"/sessions/"+id+"/end", nil)
	req.Header.Set("Origin", "https://evil.example.net")
	if res, err := c.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("a form of another site: %v %v, want 403", res, err)
	}
	if res, err := c.PostForm(g.url+"/sessions/"+id+"/end", nil); err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("alice ending her session: %v %v", res, err)
	}
	if res, _ := get(t, c, g.url+loc, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("an ended session: %d, want 404", res.StatusCode)
	}
}

func TestSignInNeverSendsTheUserToAnotherSite(t *testing.T) {
	g := start(t, false)
	for _, next := range []string{"//evil.example.net/x", "/\t/evil.example.net/x", "/\\evil.example.net", "https://evil.example.net", "/%0a/evil"} {
		c := browser(t)
		res, err := c.PostForm(g.url+"/login", url.Values{"username": {"alice"}, "password": {"alice-password"}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if loc := res.Header.Get("Location"); loc != "/" && loc != next {
			t.Errorf("next %q: redirected to %q", next, loc)
		} else if loc != "/" && strings.Contains(loc, "evil") && !strings.HasPrefix(loc, "/%") {
			t.Errorf("next %q: redirected off site to %q", next, loc)
		}
	}
}

func TestAContainerCannotPlantTheSignInCookieNorBeSpoofedItsUser(t *testing.T) {
	seen := make(chan http.Header, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		http.SetCookie(w, &http.Cookie{Name: signin.CookieName, Value: "planted", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark", Path: "/"})
		w.Header().Set("Service-Worker-Allowed", "/")
	}))
	defer upstream.Close()
	g := start(t, false)
	g.setUpstream(t, upstream.URL)
	c := browser(t)
	signIn(t, c, g.url, "alice", "alice-password")
	res, _ := get(t, c, g.url+"/session/"+g.alice+"/", http.Header{"X_Greenroom_User": {"mallory"}, "X-Greenroom_User": {"mallory"}})
	h := <-seen
	for name, v := range h {
		if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), ports.UserHeader) && (len(v) != 1 || v[0] != "alice") {
			t.Errorf("the container saw %s: %v", name, v)
		}
	}
	if res.Header.Get("Service-Worker-Allowed") != "" {
		t.Error("a container claimed the gateway's pages for a service worker")
	}
	for _, ck := range res.Cookies() {
		if ck.Name == signin.CookieName {
			t.Errorf("a container set the sign-in cookie: %v", ck)
		}
	}
	if len(res.Cookies()) != 1 || res.Cookies()[0].Name != "theme" {
		t.Errorf("the container's own cookies: %v", res.Cookies())
	}
}

// setUpstream points every session at u.
func (g gateway) setUpstream(t *testing.T, u string) {
	t.Helper()
	g.mem.mu.Lock()
	defer g.mem.mu.Unlock()
	g.mem.upstream, _ = url.Parse(u)
}
