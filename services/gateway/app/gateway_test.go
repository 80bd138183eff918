package app_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/services/gateway/app"
	"github.com/greenroom-dev/greenroom/services/gateway/domain"
)

// fakes: one store of sessions and sign-ins, a zone auth answering from a
// table, keepalives recorded.
type fakeStore struct {
	mu       sync.Mutex
	routes   map[string]app.Route
	users    map[string]string // username → password
	tokens   map[string]signin.User
	created  int
	sessions []app.SessionSummary
}

func (f *fakeStore) Route(_ context.Context, id string) (app.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.routes[id]
	if !ok {
		return app.Route{}, app.ErrUnknownSession
	}
	return r, nil
}

func (f *fakeStore) OfUser(context.Context, string) ([]app.SessionSummary, error) {
	return f.sessions, nil
}

func (f *fakeStore) CheckPassword(_ context.Context, username, password string) (signin.User, error) {
	if pw, ok := f.users[username]; ok && pw == password {
		return signin.User{ID: "id-" + username, Name: username}, nil
	}
	return signin.User{}, signin.ErrBadCredentials
}

func (f *fakeStore) Create(_ context.Context, userID string, _ time.Duration) (string, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created++
	tok := uuid.NewString()
	f.tokens[tok] = signin.User{ID: userID}
	return tok, time.Now().Add(time.Hour), nil
}

func (f *fakeStore) Lookup(_ context.Context, token string) (signin.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.tokens[token]
	if !ok {
		return u, signin.ErrUnknownToken
	}
	return u, nil
}

func (f *fakeStore) Delete(_ context.Context, token string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, token)
	return nil
}

type fakeAuth struct {
	mu     sync.Mutex
	bases  []string
	answer map[string]error // token → error (nil: granted)
}

func (a *fakeAuth) Check(_ context.Context, base *url.URL, token, _ string) (app.Grant, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bases = append(a.bases, base.String())
	if err, ok := a.answer[token]; ok && err != nil {
		return app.Grant{}, err
	}
	up, _ := url.Parse("http://127.0.0.1:32768")
	return app.Grant{User: "alice", UserID: "u-alice", Upstream: up}, nil
}

func (a *fakeAuth) calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.bases)
}

type fakeKeepalives struct{ sent chan string }

func (k fakeKeepalives) Keepalive(_ context.Context, id string) error { k.sent <- id; return nil }

type world struct {
	gw    *app.Gateway
	store *fakeStore
	auth  *fakeAuth
	kas   fakeKeepalives
	reqs  *fakeRequests
	sid   string
}

func (f *fakeStore) Workspaces(context.Context) ([]app.Workspace, error) {
	return []app.Workspace{{Name: "demo"}}, nil
}

func (f *fakeStore) Zones(context.Context) ([]domain.Zone, error) {
	return []domain.Zone{{Name: "zone-a", AllowOriginDomain: "desktops.example.com"}, {Name: "zone-b", AllowOriginDomain: "eu.example.com"}}, nil
}

type fakeRequests struct {
	mu        sync.Mutex
	requested []string // user/workspace/zone
	destroyed []string
}

func (r *fakeRequests) Request(_ context.Context, user, workspace, zone string) (app.Launched, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requested = append(r.requested, user+"/"+workspace+"/"+zone)
	return app.Launched{SessionID: "s-new", URL: "http://desktops.example.com/session/s-new/"}, nil
}

func (r *fakeRequests) Destroy(_ context.Context, id, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.destroyed = append(r.destroyed, id+" "+reason)
	return nil
}

func newWorld(t *testing.T, cfg app.Config) world {
	t.Helper()
	sid := uuid.NewString()
	store := &fakeStore{
		routes: map[string]app.Route{sid: {UserID: "u-alice", Live: true, AllowOriginDomain: "desktops.example.com",
			UpstreamAuthAddress: "10.0.0.2:8080"}},
		users:  map[string]string{"alice": "correct horse"},
		tokens: map[string]signin.User{},
	}
	auth := &fakeAuth{answer: map[string]error{"bob-token": app.ErrForbidden, "stale-token": app.ErrUnauthorized}}
	kas := fakeKeepalives{sent: make(chan string, 100)}
	reqs := &fakeRequests{}
	gw := app.New(cfg, app.Adapters{Sessions: store, SignIns: store, Auth: auth, Keepalives: kas, Catalog: store, Requests: reqs}, zap.NewNop())
	return world{gw: gw, store: store, auth: auth, kas: kas, reqs: reqs, sid: sid}
}

func (w world) req(token string) app.Request {
	return app.Request{SessionID: w.sid, Token: token, Host: "desktops.example.com"}
}

func TestOnlyTheSessionsUserIsLetThrough(t *testing.T) {
	w := newWorld(t, app.Config{})
	ctx := context.Background()
	if g, err := w.gw.Authorize(ctx, w.req("alice-token")); err != nil || g.User != "alice" || g.Upstream.Host != "127.0.0.1:32768" {
		t.Fatalf("alice: %+v %v", g, err)
	}
	if _, err := w.gw.Authorize(ctx, w.req("bob-token")); !errors.Is(err, app.ErrForbidden) {
		t.Errorf("bob: %v, want ErrForbidden", err)
	}
	if _, err := w.gw.Authorize(ctx, w.req("stale-token")); !errors.Is(err, app.ErrUnauthorized) {
		t.Errorf("an expired sign-in: %v, want ErrUnauthorized", err)
	}
	if _, err := w.gw.Authorize(ctx, w.req("")); !errors.Is(err, app.ErrUnauthorized) {
		t.Errorf("no sign-in: %v, want ErrUnauthorized", err)
	}
}

func TestStagedEndedAndUnknownSessionsAreNotFound(t *testing.T) {
	w := newWorld(t, app.Config{})
	staged, ended := uuid.NewString(), uuid.NewString()
	w.store.routes[staged] = app.Route{Live: true, AllowOriginDomain: "desktops.example.com"}
	w.store.routes[ended] = app.Route{UserID: "u-alice", AllowOriginDomain: "desktops.example.com"}
	for name, id := range map[string]string{"staged, no user": staged, "ended": ended, "unknown": uuid.NewString(), "not an id": "../etc",
		"not written as Greenroom writes ids": strings.ToUpper(w.sid)} {
		r := w.req("alice-token")
		r.SessionID = id
		if _, err := w.gw.Authorize(context.Background(), r); !errors.Is(err, app.ErrUnknownSession) {
			t.Errorf("%s: %v, want ErrUnknownSession", name, err)
		}
	}
	if n := w.auth.calls(); n != 0 {
		t.Errorf("the zone was asked %d times about sessions nobody may open", n)
	}
}

func TestASessionIsServedOnItsZonesDomainAndWebSocketsOnlyFromIt(t *testing.T) {
	w := newWorld(t, app.Config{})
	r := w.req("alice-token")
	r.Host = "127.0.0.1:8090"
	if _, err := w.gw.Authorize(context.Background(), r); !errors.Is(err, app.ErrWrongDomain) {
		t.Errorf("another host: %v, want ErrWrongDomain", err)
	}
	r = w.req("alice-token")
	r.Upgrade, r.Origin = true, "https://evil.example.net"
	if _, err := w.gw.Authorize(context.Background(), r); !errors.Is(err, app.ErrForeignOrigin) {
		t.Errorf("a WebSocket from another site: %v, want ErrForeignOrigin", err)
	}
	r.Origin = "https://desktops.example.com"
	if _, err := w.gw.Authorize(context.Background(), r); err != nil {
		t.Errorf("a WebSocket from the zone's domain: %v", err)
	}
}

func TestSignInsAreCheckedAtTheZonesUpstreamAuthAddress(t *testing.T) {
	fallback, _ := url.Parse("http://config.internal:8080")
	w := newWorld(t, app.Config{AuthFallback: fallback})
	other := uuid.NewString()
	w.store.routes[other] = app.Route{UserID: "u-alice", Live: true, AllowOriginDomain: "$request_host$", UpstreamAuthAddress: "$request_host$"}
	if _, err := w.gw.Authorize(context.Background(), w.req("alice-token")); err != nil {
		t.Fatal(err)
	}
	r := w.req("alice-token")
	r.SessionID = other
	if _, err := w.gw.Authorize(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://10.0.0.2:8080", "http://config.internal:8080"}; len(w.auth.bases) != 2 ||
		w.auth.bases[0] != want[0] || w.auth.bases[1] != want[1] {
		t.Errorf("asked %v, want %v", w.auth.bases, want)
	}
}

func TestAGrantIsReusedBrieflyAndDroppedAtSignOut(t *testing.T) {
	w := newWorld(t, app.Config{GrantTTL: time.Hour})
	ctx := context.Background()
	tok, _, err := w.gw.SignIn(ctx, "alice", "correct horse", "10.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := w.gw.Authorize(ctx, w.req(tok)); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.auth.calls(); n != 1 {
		t.Fatalf("the zone was asked %d times for one page's requests, want 1", n)
	}
	if err := w.gw.SignOut(ctx, tok); err != nil {
		t.Fatal(err)
	}
	w.auth.answer[tok] = app.ErrUnauthorized // the config service no longer knows it
	if _, err := w.gw.Authorize(ctx, w.req(tok)); !errors.Is(err, app.ErrUnauthorized) {
		t.Fatalf("after sign-out: %v, want ErrUnauthorized", err)
	}
}

// A zone vouching for another user than the session's is not believed.
func TestAGrantForAnotherUserThanTheSessionsIsRefused(t *testing.T) {
	w := newWorld(t, app.Config{})
	w.store.routes[w.sid] = app.Route{UserID: "u-bob", Live: true, AllowOriginDomain: "desktops.example.com"}
	if _, err := w.gw.Authorize(context.Background(), w.req("alice-token")); !errors.Is(err, app.ErrForbidden) {
		t.Fatalf("a grant for alice on bob's session: %v, want ErrForbidden", err)
	}
}

// Parallel guesses are counted before their passwords are checked.
func TestParallelGuessesAreLimitedToo(t *testing.T) {
	w := newWorld(t, app.Config{FailedSignIns: 3, FailedSignInEvery: time.Hour})
	var wg sync.WaitGroup
	var mu sync.Mutex
	checked := 0
	for range 50 {
		wg.Go(func() {
			if _, _, err := w.gw.SignIn(context.Background(), "alice", "guess", "10.0.0.9"); errors.Is(err, signin.ErrBadCredentials) {
				mu.Lock()
				checked++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if checked != 3 {
		t.Fatalf("%d of 50 parallel guesses had their password checked, want 3", checked)
	}
}

func TestFailedSignInsAreLimitedPerUserAndPerClient(t *testing.T) {
	w := newWorld(t, app.Config{FailedSignIns: 3, FailedSignInEvery: time.Hour})
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := w.gw.SignIn(ctx, "alice", "guess", "10.0.0.9"); !errors.Is(err, signin.ErrBadCredentials) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	// Now even the right password waits: the guesser is not told.
	if _, _, err := w.gw.SignIn(ctx, "alice", "correct horse", "10.0.0.7"); !errors.Is(err, app.ErrTooManyAttempts) {
		t.Errorf("alice after 3 failures: %v, want ErrTooManyAttempts", err)
	}
	if _, _, err := w.gw.SignIn(ctx, "carol", "anything", "10.0.0.9"); !errors.Is(err, app.ErrTooManyAttempts) {
		t.Errorf("another user from the same client: %v, want ErrTooManyAttempts", err)
	}
	w.store.users["dave"] = "dave's password"
	if _, _, err := w.gw.SignIn(ctx, "dave", "dave's password", "10.0.0.8"); err != nil {
		t.Errorf("another user from another client: %v", err)
	}
	if w.store.created != 1 {
		t.Errorf("%d sign-ins made, want dave's only", w.store.created)
	}
}

func TestTrafficAnnouncesAtMostOneKeepaliveAPeriod(t *testing.T) {
	w := newWorld(t, app.Config{KeepaliveEvery: time.Hour})
	for range 50 {
		w.gw.Touch(w.sid)
	}
	select {
	case id := <-w.kas.sent:
		if id != w.sid {
			t.Fatalf("keepalive for %s, want %s", id, w.sid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no keepalive for a session in use")
	}
	select {
	case <-w.kas.sent:
		t.Fatal("a second keepalive within the period")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestALaunchRequestsASessionInTheZoneServedOnTheHost(t *testing.T) {
	w := newWorld(t, app.Config{})
	alice := signin.User{ID: "u-alice", Name: "alice"}
	if _, err := w.gw.Launch(context.Background(), alice, "demo", "eu.example.com:8443"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.gw.Launch(context.Background(), alice, "demo", "127.0.0.1:8090"); !errors.Is(err, app.ErrWrongDomain) {
		t.Errorf("a host no zone is served on: %v, want ErrWrongDomain", err)
	}
	if len(w.reqs.requested) != 1 || w.reqs.requested[0] != "alice/demo/zone-b" {
		t.Errorf("requested %v, want alice/demo/zone-b", w.reqs.requested)
	}
}

func TestOnlyItsUserEndsASession(t *testing.T) {
	w := newWorld(t, app.Config{})
	if err := w.gw.End(context.Background(), signin.User{ID: "u-bob", Name: "bob"}, w.sid); !errors.Is(err, app.ErrForbidden) {
		t.Errorf("bob ending alice's session: %v, want ErrForbidden", err)
	}
	if err := w.gw.End(context.Background(), signin.User{ID: "u-alice", Name: "alice"}, w.sid); err != nil {
		t.Fatal(err)
	}
	if len(w.reqs.destroyed) != 1 || w.reqs.destroyed[0] != w.sid+" user" {
		t.Errorf("destroyed %v, want alice's session, reason user", w.reqs.destroyed)
	}
}
