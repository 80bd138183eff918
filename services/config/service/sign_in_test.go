package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/libs/signin"
)

// Issue 13, point 1: a user's password is written, never read back: it is
// stored as a bcrypt hash, answered only as has_password, and announced
// in no event; null removes it.
func TestUserPasswordIsWriteOnlyAndStoredHashed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	const password, next = "correct horse battery", "a new staple pass"
	secrets := []string{password, next}
	answers := []response{}
	call := func(want int, method, path string, body any) obj {
		t.Helper()
		res := h.call(method, path, body)
		if res.Status != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.Status, want, res.Body)
		}
		answers = append(answers, res)
		return decodeAs[obj](t, res)
	}
	signsIn := func(username, password string) bool {
		t.Helper()
		_, err := signin.CheckPassword(ctx, h.deps.DB, username, password)
		if err != nil && !errors.Is(err, signin.ErrBadCredentials) {
			t.Fatal(err)
		}
		return err == nil
	}

	alice := call(201, "POST", "/api/v1/users", obj{"username": "alice", "password": password})
	if alice["has_password"] != true || !signsIn("alice", password) {
		t.Errorf("created with a password: has_password %v, or the password does not sign in", alice["has_password"])
	}
	var stored string
	if err := h.deps.DB.Get(&stored, `SELECT password_hash FROM users WHERE username = 'alice'`); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "$2") || strings.Contains(stored, password) {
		t.Errorf("stored %q, want a bcrypt hash", stored)
	}
	secrets = append(secrets, stored)
	if bob := call(201, "POST", "/api/v1/users", obj{"username": "bob"}); bob["has_password"] != false {
		t.Errorf("created without a password: has_password %v", bob["has_password"])
	}
	call(200, "GET", "/api/v1/users/alice", nil)
	call(200, "GET", "/api/v1/users", nil)

	h.problem(400, "password", "POST", "/api/v1/users", obj{"username": "carol", "password": "short"})
	h.problem(400, "password", "POST", "/api/v1/users", obj{"username": "carol", "password": strings.Repeat("x", 73)})
	h.problem(400, "password", "PATCH", "/api/v1/users/alice", obj{"password": "1234567"})
	h.problem(404, "", "GET", "/api/v1/users/carol", nil)

	if a := call(200, "PATCH", "/api/v1/users/alice", obj{"attributes": obj{"team": "a"}}); a["has_password"] != true {
		t.Errorf("a change of attributes removed the password: %v", a)
	}
	call(200, "PATCH", "/api/v1/users/alice", obj{"password": next})
	if signsIn("alice", password) || !signsIn("alice", next) {
		t.Error("the new password does not replace the old one")
	}
	if a := call(200, "PATCH", "/api/v1/users/alice", obj{"password": nil}); a["has_password"] != false {
		t.Errorf("after password null: has_password %v", a["has_password"])
	}
	if signsIn("alice", next) {
		t.Error("alice still signs in after her password was removed")
	}

	for _, res := range answers {
		for _, secret := range secrets {
			if strings.Contains(string(res.Body), secret) || strings.Contains(string(res.Body), "password_hash") {
				t.Errorf("an answer carries the password or its hash: %s", res.Body)
			}
		}
	}
	// alice and bob created, alice updated three times.
	const changes = 5
	if n := h.relayOnce(); n != changes {
		t.Fatalf("relay published %d events, want %d", n, changes)
	}
	apptest.Eventually(t, 10*time.Second, "the user events", func() bool {
		return len(h.events.Find("greenroom.config.changed.user", "")) == changes
	})
	// The events show the users as the answers do: has_password, never a
	// password or its hash.
	for _, ev := range h.events.All() {
		for _, secret := range secrets {
			if raw := string(ev.Raw); strings.Contains(raw, secret) || strings.Contains(raw, `"password"`) || strings.Contains(raw, "password_hash") {
				t.Errorf("event on %s carries the password: %s", ev.Subject, ev.Raw)
			}
		}
	}
}

// signedIn is a user with a sign-in, as the gateway records it.
type signedIn struct {
	user  obj
	token string
}

// signIn records a sign-in of user lasting ttl, as the gateway does.
func (h *harness) signIn(user obj, ttl time.Duration) signedIn {
	h.t.Helper()
	token, _, err := signin.Create(context.Background(), h.deps.DB, user.str("id"), ttl)
	if err != nil {
		h.t.Fatal(err)
	}
	return signedIn{user: user, token: token}
}

// bearer sends the user's sign-in token instead of the admin token.
func (s signedIn) bearer() callOption { return withHeader("Authorization", "Bearer "+s.token) }

// cookie sends the user's sign-in token as a browser does, without any
// Authorization header.
func (s signedIn) cookie() callOption {
	return func(r *http.Request) {
		r.Header.Del("Authorization")
		r.AddCookie(&http.Cookie{Name: signin.CookieName, Value: s.token})
	}
}

// Issue 13, point 2: GET /api/v1/session-auth takes the user's sign-in
// token, as a bearer token or in the cookie, and never the admin token.
func TestSessionAuthAcceptsOnlyALiveSignInToken(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	alice := h.signIn(w.user, time.Hour)
	expired := h.signIn(w.user, -time.Second)

	for _, tc := range []struct {
		name string
		opts []callOption
	}{
		{"no token", []callOption{withoutToken()}},
		{"unknown token", []callOption{withHeader("Authorization", "Bearer not-a-sign-in")}},
		{"the admin token", nil},
		{"an expired sign-in", []callOption{expired.bearer()}},
		{"an expired sign-in in the cookie", []callOption{expired.cookie()}},
	} {
		res := h.call("GET", "/api/v1/session-auth", nil, tc.opts...)
		if res.Status != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") ||
			res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %v %s", tc.name, res.Status, res.Header, res.Body)
		}
	}

	for name, opt := range map[string]callOption{"bearer": alice.bearer(), "cookie": alice.cookie()} {
		var got obj
		h.must(200, "GET", "/api/v1/session-auth", nil, &got, opt)
		if want := (obj{"user": "alice", "user_id": w.user.str("id")}); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

// Issue 13, point 2: with ?session=, only the user of a live session is
// let through, and told where its container is.
func TestSessionAuthLetsThroughOnlyTheUserOfALiveSession(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	bob := h.create("users", obj{"username": "bob"})
	ofBob := w
	ofBob.user = bob
	alice := h.signIn(w.user, time.Hour)

	running := h.insertSession(w, "req-alice", sessions.Running, "")
	const upstream = "http://127.0.0.1:32768"
	h.deps.DB.MustExec(`UPDATE sessions SET upstream_url = $2 WHERE id = $1`, running.ID, upstream)
	sc := h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})
	staged := h.insertSession(w, "", sessions.Staged, sc.str("id"))
	bobs := h.insertSession(ofBob, "req-bob", sessions.Running, "")
	destroyed := h.insertSession(w, "req-gone", sessions.Running, "")
	for _, to := range []sessions.Status{sessions.Destroying, sessions.Destroyed} {
		var err error
		if destroyed, err = sessions.Transition(context.Background(), h.deps.DB, destroyed.ID, destroyed.Status, to, sessions.Change{}); err != nil {
			t.Fatal(err)
		}
	}

	for name, opt := range map[string]callOption{"bearer": alice.bearer(), "cookie": alice.cookie()} {
		var got struct {
			User        string          `json:"user"`
			UserID      string          `json:"user_id"`
			Session     json.RawMessage `json:"session"`
			UpstreamURL string          `json:"upstream_url"`
		}
		h.must(200, "GET", "/api/v1/session-auth?session="+running.ID, nil, &got, opt)
		var session, asGot obj
		h.must(200, "GET", "/api/v1/sessions/"+running.ID, nil, &session)
		if err := json.Unmarshal(got.Session, &asGot); err != nil {
			t.Fatal(err)
		}
		if got.User != "alice" || got.UserID != w.user.str("id") || got.UpstreamURL != upstream || !reflect.DeepEqual(asGot, session) {
			t.Errorf("%s: user_id %s, upstream_url %q, session %v; want %s, %q, %v", name, got.UserID, got.UpstreamURL, asGot,
				w.user.str("id"), upstream, session)
		}
	}

	h.problem(403, "", "GET", "/api/v1/session-auth?session="+bobs.ID, nil, alice.bearer())
	h.problem(403, "", "GET", "/api/v1/session-auth?session="+staged.ID, nil, alice.cookie())
	h.problem(404, "", "GET", "/api/v1/session-auth?session="+destroyed.ID, nil, alice.bearer())
	h.problem(404, "", "GET", "/api/v1/session-auth?session="+uuid.NewString(), nil, alice.bearer())
	h.problem(400, "session", "GET", "/api/v1/session-auth?session=42", nil, alice.bearer())
	// Who is asking comes first: nothing about a session is told to no one.
	h.problem(401, "", "GET", "/api/v1/session-auth?session="+running.ID, nil)
}
