package service_test

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// issueKey issues an API key with scopes through the API and returns it
// and its secret.
func (h *harness) issueKey(name string, scopes ...string) (obj, string) {
	h.t.Helper()
	k := h.create("api-keys", obj{"name": name, "scopes": scopes})
	return k, k.str("secret")
}

// withKey sends secret, an API key's, instead of the admin token.
func withKey(secret string) callOption { return withHeader("Authorization", "Bearer "+secret) }

var secretForm = regexp.MustCompile(`^grk_[A-Za-z0-9_-]{43}$`)

// Issue 13, point 6: a key's secret is answered once, when it is issued;
// the database keeps its SHA-256, and no other answer or event carries it.
func TestAPIKeySecretIsShownOnceAndStoredHashed(t *testing.T) {
	h := newHarness(t)
	issued, secret := h.issueKey("kiosk", "sessions")
	if !secretForm.MatchString(secret) || issued.str("prefix") != secret[:12] {
		t.Fatalf("secret %q with prefix %q, want grk_ and 43 base64url characters, prefix its first 12", secret, issued.str("prefix"))
	}
	if issued.str("name") != "kiosk" || len(issued["scopes"].([]any)) != 1 || issued["last_used_at"] != nil || issued["expires_at"] != nil {
		t.Errorf("issued key %v", issued)
	}

	var answers [][]byte
	for _, path := range []string{"/api/v1/api-keys", "/api/v1/api-keys/kiosk"} {
		res := h.call("GET", path, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.Status, res.Body)
		}
		answers = append(answers, res.Body)
	}
	var got obj
	h.must(200, "GET", "/api/v1/api-keys/kiosk", nil, &got)
	if got["secret"] != nil || got.str("id") != issued.str("id") || got.str("prefix") != issued.str("prefix") {
		t.Errorf("GET answers %v", got)
	}

	var row struct {
		Hash []byte `db:"secret_hash"`
		Text string `db:"text"`
	}
	if err := h.deps.DB.Get(&row, `SELECT secret_hash, row_to_json(k)::text AS text FROM api_keys k WHERE name = 'kiosk'`); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256([]byte(secret)); !bytes.Equal(row.Hash, sum[:]) {
		t.Errorf("stored hash %x, want the secret's SHA-256 %x", row.Hash, sum)
	}
	if strings.Contains(row.Text, secret[12:]) {
		t.Errorf("the row holds the secret: %s", row.Text)
	}

	h.must(204, "DELETE", "/api/v1/api-keys/kiosk", nil, nil)
	if n := h.relayOnce(); n != 2 {
		t.Fatalf("relay published %d events, want the key's creation and deletion", n)
	}
	c := h.streamConsumer("greenroom.config.changed.api_key")
	for _, op := range []string{"created", "deleted"} {
		msg := nextEvent(t, c)
		var ev events.ConfigChanged
		h.decodeEvent(msg.Data(), &ev)
		if ev.Kind != "api_key" || ev.Op != op || ev.ID != issued.str("id") || ev.Name != "kiosk" ||
			ev.Actor != (events.Actor{Type: events.ActorAdminToken}) {
			t.Errorf("event %+v, want the key %s by the admin token", ev, op)
		}
		answers = append(answers, msg.Data())
	}
	for _, a := range answers {
		if bytes.Contains(a, []byte(secret[12:])) || bytes.Contains(a, []byte("hash")) {
			t.Errorf("an answer or event carries the secret or its hash: %s", a)
		}
	}
}

// Issue 13, point 6: a sessions key requests, lists, reads, keeps alive
// and ends sessions, and is refused (403, naming the scope) everything
// else.
func TestSessionsKeyMayOnlyRequestAndManageSessions(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	running := h.insertSession(w, "req-1", sessions.Running, "")
	_, secret := h.issueKey("kiosk", "sessions")
	key := withKey(secret)

	h.must(202, "POST", "/api/v1/sessions?wait=0", obj{"user": "alice", "workspace": "demo", "zone": "eu"}, nil, key)
	h.problem(404, "user", "POST", "/api/v1/sessions?wait=0", obj{"user": "bob", "workspace": "demo", "zone": "eu"}, key)
	var list struct{ Items []obj }
	h.must(200, "GET", "/api/v1/sessions?user=alice", nil, &list, key)
	if len(list.Items) != 1 || list.Items[0].str("id") != running.ID { // no assigner runs: the request made none
		t.Errorf("alice's sessions: %v", list.Items)
	}
	h.must(200, "GET", "/api/v1/sessions/"+running.ID, nil, nil, key)
	h.must(200, "POST", "/api/v1/sessions/"+running.ID+"/keepalive", nil, nil, key)
	h.must(202, "DELETE", "/api/v1/sessions/"+running.ID, nil, nil, key)

	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/zones", nil},
		{"PATCH", "/api/v1/users/alice", obj{"groups": []string{}}},
		{"GET", "/api/v1/violations", nil},
		{"GET", "/api/v1/api-keys", nil},
		{"POST", "/api/v1/api-keys", obj{"name": "mine", "scopes": []string{"admin"}}},
		{"DELETE", "/api/v1/api-keys/kiosk", nil},
	} {
		p := h.problem(403, "", c.method, c.path, c.body, key)
		if !strings.Contains(p.Detail, `lacks scope "admin"`) {
			t.Errorf("%s %s: detail %q does not name the missing scope", c.method, c.path, p.Detail)
		}
	}
	h.must(200, "GET", "/api/v1/api-keys/kiosk", nil, nil) // still there
	h.problem(404, "", "GET", "/api/v1/api-keys/mine", nil)
}

// Issue 13, point 6: an admin key does what the admin token does.
func TestAdminKeyMayDoEverything(t *testing.T) {
	h := newHarness(t)
	_, secret := h.issueKey("ops", "admin")
	key := withKey(secret)

	h.must(201, "POST", "/api/v1/zones", obj{"name": "eu"}, nil, key)
	h.must(200, "GET", "/api/v1/violations", nil, nil, key)
	h.must(200, "GET", "/api/v1/sessions", nil, nil, key)
	var other obj
	h.must(201, "POST", "/api/v1/api-keys", obj{"name": "kiosk", "scopes": []string{"sessions"}}, &other, key)
	h.must(200, "GET", "/api/v1/api-keys", nil, nil, key)
	h.must(204, "DELETE", "/api/v1/api-keys/kiosk", nil, nil, key)
	h.problem(401, "", "GET", "/api/v1/sessions", nil, withKey(other.str("secret")))
}

// Issue 13, point 6: a deleted or expired key, and any secret that was
// not issued, is answered 401; session-auth takes no key at all.
func TestRevokedExpiredOrUnknownAPIKeyIsUnauthorized(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	alice := h.signIn(w.user, time.Hour)
	_, revoked := h.issueKey("revoked", "admin")
	expiring := h.create("api-keys", obj{"name": "expiring", "scopes": []string{"sessions"},
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	_, live := h.issueKey("live", "sessions", "admin")

	h.must(200, "GET", "/api/v1/sessions", nil, nil, withKey(revoked))
	h.must(200, "GET", "/api/v1/sessions", nil, nil, withKey(expiring.str("secret")))
	h.must(204, "DELETE", "/api/v1/api-keys/revoked", nil, nil)
	h.deps.DB.MustExec(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE name = 'expiring'`)

	last := "A"
	if strings.HasSuffix(live, last) {
		last = "B"
	}
	for name, token := range map[string]string{
		"a deleted key":              revoked,
		"an expired key":             expiring.str("secret"),
		"a secret one character off": live[:len(live)-1] + last,
		"a secret never issued":      "grk_" + strings.Repeat("A", 43),
		"a truncated secret":         live[:20],
		"the prefix alone":           "grk_",
	} {
		res := h.call("GET", "/api/v1/sessions", nil, withKey(token))
		if res.Status != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") ||
			res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %v %s", name, res.Status, res.Header, res.Body)
		}
		if name == "an expired key" && !strings.Contains(string(res.Body), "expired") {
			t.Errorf("an expired key: detail does not say so: %s", res.Body)
		}
	}
	h.must(200, "GET", "/api/v1/sessions", nil, nil, withKey(live))
	h.must(200, "GET", "/api/v1/sessions", nil, nil) // the admin token

	// session-auth is a user's call: no key stands for a sign-in.
	h.problem(401, "", "GET", "/api/v1/session-auth", nil, withKey(live))
	h.must(200, "GET", "/api/v1/session-auth", nil, nil, alice.bearer())
}

// Issue 13, point 6: last_used_at says when a key was last used, written
// at most once a minute per key so that most requests only read.
func TestAPIKeyUseIsRecordedAtMostOncePerMinute(t *testing.T) {
	h := newHarness(t)
	_, secret := h.issueKey("kiosk", "sessions")
	lastUsed := func() any {
		t.Helper()
		var k obj
		h.must(200, "GET", "/api/v1/api-keys/kiosk", nil, &k)
		return k["last_used_at"]
	}

	before := time.Now().Add(-time.Second)
	h.must(200, "GET", "/api/v1/sessions", nil, nil, withKey(secret))
	first, ok := lastUsed().(string)
	if at, err := time.Parse(time.RFC3339Nano, first); !ok || err != nil || at.Before(before) {
		t.Fatalf("after a first use: last_used_at %v", first)
	}
	h.must(200, "GET", "/api/v1/sessions", nil, nil, withKey(secret))
	if again := lastUsed(); again != first {
		t.Errorf("a second use within a minute wrote last_used_at: %v, was %s", again, first)
	}
	h.deps.DB.MustExec(`UPDATE api_keys SET last_used_at = last_used_at - interval '61 seconds' WHERE name = 'kiosk'`)
	h.must(200, "GET", "/api/v1/sessions", nil, nil, withKey(secret))
	if later, _ := lastUsed().(string); later == first || later == "" {
		t.Errorf("a use a minute later: last_used_at %q, was %q (then set a minute back)", later, first)
	}
}

// Issue 13, point 6: a bad body is a 400 naming its field; a taken name
// is a 409.
func TestAPIKeyBodyIsValidated(t *testing.T) {
	h := newHarness(t)
	h.issueKey("kiosk", "sessions")
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		body  obj
		field string
	}{
		{obj{"scopes": []string{"sessions"}}, "name"},
		{obj{"name": "Kiosk 2", "scopes": []string{"sessions"}}, "name"},
		{obj{"name": "k2"}, "scopes"},
		{obj{"name": "k2", "scopes": []string{}}, "scopes"},
		{obj{"name": "k2", "scopes": nil}, "scopes"},
		{obj{"name": "k2", "scopes": []string{"sessions", "root"}}, "scopes[1]"},
		{obj{"name": "k2", "scopes": []string{"admin", "admin"}}, "scopes[1]"},
		{obj{"name": "k2", "scopes": []string{"admin"}, "expires_at": "tomorrow"}, "expires_at"},
		{obj{"name": "k2", "scopes": []string{"admin"}, "expires_at": past}, "expires_at"},
		{obj{"name": "k2", "scopes": []string{"admin"}, "secret": "grk_mine"}, "secret"},
	} {
		h.problem(400, c.field, "POST", "/api/v1/api-keys", c.body)
	}
	h.problem(409, "", "POST", "/api/v1/api-keys", obj{"name": "kiosk", "scopes": []string{"admin"}})
	h.must(201, "POST", "/api/v1/api-keys", obj{"name": "k2", "scopes": []string{"admin"}, "expires_at": nil}, nil)
}
