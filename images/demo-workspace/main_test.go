package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// envMap is a getenv backed by a map, so tests never touch the process
// environment and can run in parallel.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestPageBeforeAndAfterAssign(t *testing.T) {
	t.Parallel()
	statePath := filepath.Join(t.TempDir(), "sub", "state.json")
	h := newHandler(serverConfig{statePath: statePath, sessionID: "sess-123"})

	rec := get(t, h, "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / before assign: status %d, body %q", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{"Greenroom demo workspace", "sess-123", "unassigned"} {
		if !strings.Contains(body, want) {
			t.Errorf("page before assign lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "Assigned to") {
		t.Errorf("page before assign claims an assignment:\n%s", body)
	}

	var stdout, stderr bytes.Buffer
	env := envMap(map[string]string{"GREENROOM_DEMO_STATE": statePath})
	if code := run(context.Background(), []string{"assign", "--user", "alice", "--user-id", "42"}, env, &stdout, &stderr); code != 0 {
		t.Fatalf("assign exit %d, stderr %q", code, stderr.String())
	}

	body = get(t, h, "/").Body.String()
	if !strings.Contains(body, "Assigned to alice") || !strings.Contains(body, "42") {
		t.Errorf("page after assign does not show alice:\n%s", body)
	}
	if strings.Contains(body, "unassigned") {
		t.Errorf("page after assign still says unassigned:\n%s", body)
	}
}

func TestPageEscapesUserName(t *testing.T) {
	t.Parallel()
	statePath := filepath.Join(t.TempDir(), "state.json")
	evil := `<script>alert("x")</script>&`
	if err := writeState(statePath, state{User: evil}); err != nil {
		t.Fatal(err)
	}
	body := get(t, newHandler(serverConfig{statePath: statePath, sessionID: ""}), "/").Body.String()
	if strings.Contains(body, "<script>") {
		t.Fatalf("user name not escaped:\n%s", body)
	}
	if !strings.Contains(body, "Assigned to &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;") {
		t.Errorf("escaped user name missing:\n%s", body)
	}
}

func TestHealthzAndStateAPI(t *testing.T) {
	t.Parallel()
	statePath := filepath.Join(t.TempDir(), "state.json")
	h := newHandler(serverConfig{statePath: statePath, sessionID: "sess-9"})

	rec := get(t, h, "/healthz")
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\"", rec.Code, rec.Body)
	}

	var got map[string]any
	rec = get(t, h, "/api/state")
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("GET /api/state: %v in %q", err, rec.Body)
	}
	if got["session_id"] != "sess-9" || got["user"] != "" || got["assigned_at"] != nil {
		t.Errorf("unassigned state = %v", got)
	}
	for _, k := range []string{"session_id", "user", "user_id", "assigned_at"} {
		if _, ok := got[k]; !ok {
			t.Errorf("state lacks key %q: %v", k, got)
		}
	}

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := writeState(statePath, state{User: "bob", UserID: "7", AssignedAt: &at}); err != nil {
		t.Fatal(err)
	}
	rec = get(t, h, "/api/state")
	var st state
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.SessionID != "sess-9" || st.User != "bob" || st.UserID != "7" || st.AssignedAt == nil || !st.AssignedAt.Equal(at) {
		t.Errorf("assigned state = %+v", st)
	}

	if rec := get(t, h, "/nope"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", rec.Code)
	}
}

func TestCorruptStateIsAnError(t *testing.T) {
	t.Parallel()
	statePath := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(statePath, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, newHandler(serverConfig{statePath: statePath, sessionID: ""}), "/"); rec.Code != http.StatusInternalServerError {
		t.Errorf("GET / with corrupt state = %d, want 500", rec.Code)
	}
}

func TestAssign(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		args             []string
		env              map[string]string
		wantCode         int
		wantUser, wantID string
		wantStderr       string
	}{
		{name: "flags", args: []string{"--user", "alice", "--user-id", "1"}, wantUser: "alice", wantID: "1"},
		{name: "env", env: map[string]string{"GREENROOM_USER": "carol", "GREENROOM_USER_ID": "3"}, wantUser: "carol", wantID: "3"},
		{name: "flags win over env", args: []string{"--user=dave"}, env: map[string]string{"GREENROOM_USER": "carol", "GREENROOM_USER_ID": "3"}, wantUser: "dave", wantID: "3"},
		{name: "missing user", args: []string{"--user-id", "1"}, wantCode: exitUsage, wantStderr: "no user"},
		{name: "empty user", args: []string{"--user", ""}, wantCode: exitUsage, wantStderr: "no user"},
		{name: "stray argument", args: []string{"--user", "alice", "extra"}, wantCode: exitUsage, wantStderr: "unexpected argument"},
		{name: "unknown flag", args: []string{"--bogus"}, wantCode: exitUsage, wantStderr: "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A nested, missing directory: the image has no directories.
			statePath := filepath.Join(t.TempDir(), "var", "lib", "greenroom-demo", "state.json")
			env := map[string]string{"GREENROOM_DEMO_STATE": statePath, "GREENROOM_SESSION_ID": "s1"}
			for k, v := range tt.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"assign"}, tt.args...), envMap(env), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantStderr)
			}
			if tt.wantCode != 0 {
				if _, err := os.Stat(statePath); !os.IsNotExist(err) {
					t.Errorf("failed assign left a state file (stat: %v)", err)
				}
				return
			}
			if n := strings.Count(stdout.String(), "\n"); n != 1 || !strings.Contains(stdout.String(), tt.wantUser) {
				t.Errorf("stdout %q, want one line naming %s", stdout.String(), tt.wantUser)
			}
			st, err := readState(statePath)
			if err != nil {
				t.Fatal(err)
			}
			if st.User != tt.wantUser || st.UserID != tt.wantID || st.SessionID != "s1" || st.AssignedAt == nil {
				t.Errorf("state = %+v, want user %q id %q", st, tt.wantUser, tt.wantID)
			}
			// Only the state file remains: the temporary file was renamed.
			entries, err := os.ReadDir(filepath.Dir(statePath))
			if err != nil || len(entries) != 1 {
				t.Errorf("state directory holds %v (err %v), want only state.json", entries, err)
			}
		})
	}
}

func TestParseDelay(t *testing.T) {
	t.Parallel()
	good := map[string]time.Duration{"": defaultInitDelay, "0": 0, "500ms": 500 * time.Millisecond, "3s": 3 * time.Second, "1m30s": 90 * time.Second}
	for in, want := range good {
		if got, err := parseDelay(in); err != nil || got != want {
			t.Errorf("parseDelay(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"3", "soon", "-1s", "1x"} {
		if _, err := parseDelay(in); err == nil || !strings.Contains(err.Error(), "GREENROOM_DEMO_INIT_DELAY") {
			t.Errorf("parseDelay(%q) error = %v, want one naming the variable", in, err)
		}
	}
}

func TestServeBadDelayExits(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	env := envMap(map[string]string{"GREENROOM_DEMO_INIT_DELAY": "soon"})
	if code := run(context.Background(), nil, env, &stdout, &stderr); code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(stderr.String(), "GREENROOM_DEMO_INIT_DELAY") {
		t.Errorf("stderr %q does not name the variable", stderr.String())
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, envMap(nil), &stdout, &stderr); code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
		for _, want := range []string{"serve", "assign", "GREENROOM_DEMO_INIT_DELAY", "GREENROOM_DEMO_STATE", "PORT"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%v: usage lacks %q", args, want)
			}
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, envMap(nil), &stdout, &stderr); code != exitUsage {
		t.Errorf("unknown subcommand: exit %d, want %d", code, exitUsage)
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "Usage:") {
		t.Errorf("unknown subcommand: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// TestServeStopsDuringDelay checks that the port stays closed while
// initialising and that a signal (here: cancellation) ends serve at once,
// without waiting out the delay, so docker stop is quick even then.
func TestServeStopsDuringDelay(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	listened := make(chan net.Addr, 1)
	cfg := serverConfig{addr: "127.0.0.1:0", delay: time.Hour, statePath: filepath.Join(t.TempDir(), "s.json")}
	go func() { done <- serve(ctx, cfg, log.New(io.Discard, "", 0), func(a net.Addr) { listened <- a }) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	select {
	case a := <-listened:
		t.Fatalf("serve listened on %v during its initialisation delay", a)
	default:
	}
}

// TestServeAnswersAndShutsDown runs the real server on a free port.
func TestServeAnswersAndShutsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	listened := make(chan net.Addr, 1)
	cfg := serverConfig{addr: "127.0.0.1:0", statePath: filepath.Join(t.TempDir(), "s.json"), sessionID: "live"}
	go func() { done <- serve(ctx, cfg, log.New(io.Discard, "", 0), func(a net.Addr) { listened <- a }) }()

	var addr net.Addr
	select {
	case addr = <-listened:
	case err := <-done:
		t.Fatalf("serve returned before listening: %v", err)
	}
	resp, err := http.Get("http://" + addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "live") {
		t.Errorf("GET / = %d %q", resp.StatusCode, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after cancel: %v", err)
	}
}

func TestOnDemandPageShowsItsUserAndWebFilterFromCreation(t *testing.T) {
	t.Parallel()
	statePath := filepath.Join(t.TempDir(), "state.json")
	cfg, err := configFromEnv(envMap(map[string]string{
		"GREENROOM_DEMO_STATE": statePath, "GREENROOM_SESSION_ID": "sess-7",
		"GREENROOM_USER": "carol", "GREENROOM_USER_ID": "u-7",
		"GREENROOM_WEB_FILTER": `{"name":"kids","default_allow":false,"allowed_domains":["example.com"],"denied_domains":[]}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(cfg)
	body := get(t, h, "/").Body.String()
	for _, want := range []string{"Created for carol (user id u-7) on demand", "Web filter policy kids: denies by default; allowed: example.com"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "unassigned") {
		t.Errorf("an on-demand page must not say it waits for a user:\n%s", body)
	}
	var st state
	if err := json.Unmarshal(get(t, h, "/api/state").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.User != "carol" || !st.FromCreation || st.WebFilter == nil || st.WebFilter.Name != "kids" {
		t.Fatalf("state %+v", st)
	}
}

func TestFileAndEnvSubcommands(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b.txt")
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"file", "write", path, "one"}, {"file", "append", path, "two"}} {
		if code := run(context.Background(), args, envMap(nil), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, errOut.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"file", "read", path}, envMap(nil), &out, &errOut); code != 0 || out.String() != "one\ntwo\n" {
		t.Fatalf("read: exit %d %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"env"}, envMap(nil), &out, &errOut); code != 0 || !strings.Contains(out.String(), "uid=") {
		t.Fatalf("env: exit %d %q", code, out.String())
	}
}

// postAssign sends the HTTP assign hook's request; auth is the whole
// Authorization header ("" for none).
func postAssign(t *testing.T, h http.Handler, auth, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/.greenroom/assign", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const hookSecret = "s3cret-0123456789abcdef"

// hookHandler is a staged container of session sess-1 with the hook on
// (secret non-empty) or off.
func hookHandler(t *testing.T, secret string) (http.Handler, string) {
	t.Helper()
	statePath := filepath.Join(t.TempDir(), "var", "lib", "greenroom-demo", "state.json")
	cfg, err := configFromEnv(envMap(map[string]string{
		"GREENROOM_DEMO_STATE": statePath, "GREENROOM_SESSION_ID": "sess-1",
		"GREENROOM_ASSIGN_SECRET": secret,
	}))
	if err != nil {
		t.Fatal(err)
	}
	return newHandler(cfg), statePath
}

const aliceAssignment = `{"session_id":"sess-1","user":"alice","user_id":"u-42",` +
	`"permissions":{"allow_audio":true,"allow_uploads":false},"environment":{"LANG":"en"},"future_field":[1]}`

func TestAssignHookAssignsWithTheRightSecret(t *testing.T) {
	t.Parallel()
	h, statePath := hookHandler(t, hookSecret)
	if body := get(t, h, "/").Body.String(); !strings.Contains(body, "unassigned") {
		t.Fatalf("page before the hook:\n%s", body)
	}

	rec := postAssign(t, h, "Bearer "+hookSecret, aliceAssignment)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /.greenroom/assign = %d %q, want 200", rec.Code, rec.Body)
	}
	var answer map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer["assigned"] != true || len(answer) != 1 {
		t.Errorf("answer %q (%v), want {\"assigned\": true}", rec.Body, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	body := get(t, h, "/").Body.String()
	if !strings.Contains(body, "Assigned to alice (user id u-42)") || strings.Contains(body, "unassigned") {
		t.Errorf("page after the hook does not show alice:\n%s", body)
	}
	var st state
	if err := json.Unmarshal(get(t, h, "/api/state").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.User != "alice" || st.UserID != "u-42" || st.SessionID != "sess-1" || st.AssignedAt == nil || st.FromCreation {
		t.Errorf("/api/state after the hook = %+v", st)
	}
	// Recorded exactly as the exec assign records it.
	onDisk, err := readState(statePath)
	if err != nil || onDisk.User != "alice" || onDisk.UserID != "u-42" || onDisk.SessionID != "sess-1" || onDisk.AssignedAt == nil {
		t.Errorf("state file %+v (%v)", onDisk, err)
	}

	// The scheme is case-insensitive; a body without session_id is
	// accepted (the container's own id is recorded).
	if rec := postAssign(t, h, "bearer "+hookSecret, `{"user":"bob"}`); rec.Code != http.StatusOK {
		t.Errorf("lower-case scheme, no session_id: %d %q", rec.Code, rec.Body)
	}
	if st, _ := readState(statePath); st.User != "bob" || st.SessionID != "sess-1" {
		t.Errorf("state after the second assignment %+v", st)
	}
}

func TestAssignHookRefusesAMissingOrWrongBearer(t *testing.T) {
	t.Parallel()
	h, statePath := hookHandler(t, hookSecret)
	for name, auth := range map[string]string{
		"no header":       "",
		"no token":        "Bearer ",
		"wrong token":     "Bearer not-the-secret",
		"prefix":          "Bearer " + hookSecret[:len(hookSecret)-1],
		"longer":          "Bearer " + hookSecret + "x",
		"basic scheme":    "Basic " + hookSecret,
		"token alone":     hookSecret,
		"other container": "Bearer other-" + hookSecret,
	} {
		rec := postAssign(t, h, auth, aliceAssignment)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d %q, want 401", name, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q, want Bearer", name, got)
		}
		if strings.Contains(rec.Body.String(), hookSecret) {
			t.Errorf("%s: the answer echoes the secret: %q", name, rec.Body)
		}
	}
	if _, err := os.Stat(statePath); !os.IsNotExist(err) {
		t.Errorf("a refused hook wrote the state file (stat: %v)", err)
	}
	if body := get(t, h, "/").Body.String(); strings.Contains(body, "Assigned to") {
		t.Errorf("a refused hook assigned the session:\n%s", body)
	}
}

func TestAssignHookIsOffWithoutASecret(t *testing.T) {
	t.Parallel()
	h, statePath := hookHandler(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer anything"} {
		rec := postAssign(t, h, auth, aliceAssignment)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "GREENROOM_ASSIGN_SECRET is not set") {
			t.Errorf("auth %q: %d %q, want 404 saying the hook is off", auth, rec.Code, rec.Body)
		}
	}
	if _, err := os.Stat(statePath); !os.IsNotExist(err) {
		t.Errorf("the hook is off but wrote the state file (stat: %v)", err)
	}
}

func TestAssignHookRefusesBadBodies(t *testing.T) {
	t.Parallel()
	h, statePath := hookHandler(t, hookSecret)
	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"no user", `{"session_id":"sess-1","user_id":"u-1","permissions":{},"environment":{}}`, http.StatusBadRequest},
		{"empty user", `{"user":""}`, http.StatusBadRequest},
		{"empty body", ``, http.StatusBadRequest},
		{"not JSON", `user=alice`, http.StatusBadRequest},
		{"user not a string", `{"user":7}`, http.StatusBadRequest},
		{"two values", `{"user":"alice"} {"user":"mallory"}`, http.StatusBadRequest},
		{"too large", `{"user":"alice","environment":{"X":"` + strings.Repeat("x", maxAssignBody) + `"}}`, http.StatusRequestEntityTooLarge},
		{"another session", `{"session_id":"sess-2","user":"mallory"}`, http.StatusConflict},
	} {
		rec := postAssign(t, h, "Bearer "+hookSecret, tt.body)
		if rec.Code != tt.want {
			t.Errorf("%s: status %d %q, want %d", tt.name, rec.Code, rec.Body, tt.want)
		}
		var answer struct {
			Assigned bool   `json:"assigned"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer.Assigned || answer.Error == "" {
			t.Errorf("%s: answer %q (%v), want assigned false and an error", tt.name, rec.Body, err)
		}
	}
	if _, err := os.Stat(statePath); !os.IsNotExist(err) {
		t.Errorf("a refused body wrote the state file (stat: %v)", err)
	}
}

func TestAssignHookWithoutAContainerSessionIDAcceptsAny(t *testing.T) {
	t.Parallel()
	statePath := filepath.Join(t.TempDir(), "state.json")
	h := newHandler(serverConfig{statePath: statePath, assignSecret: hookSecret})
	if rec := postAssign(t, h, "Bearer "+hookSecret, `{"session_id":"sess-9","user":"carol"}`); rec.Code != http.StatusOK {
		t.Fatalf("status %d %q", rec.Code, rec.Body)
	}
	if st, _ := readState(statePath); st.User != "carol" || st.SessionID != "" {
		t.Errorf("state %+v: the container's own (empty) session id is recorded", st)
	}
}

func TestAssignHookOnlyAnswersPOST(t *testing.T) {
	t.Parallel()
	h, _ := hookHandler(t, hookSecret)
	if rec := get(t, h, "/.greenroom/assign"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /.greenroom/assign = %d, want 405", rec.Code)
	}
}

// TestAssignHookOverTheRealServer posts through serve's own HTTP server,
// twice on one kept-alive connection as the provisioner does, and checks
// that nothing it logs names the secret.
func TestAssignHookOverTheRealServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	logger := log.New(&lockedWriter{w: &logs}, "", 0)
	cfg := serverConfig{addr: "127.0.0.1:0", statePath: filepath.Join(t.TempDir(), "s.json"), sessionID: "live", assignSecret: hookSecret}
	done := make(chan error, 1)
	listened := make(chan net.Addr, 1)
	go func() { done <- serve(ctx, cfg, logger, func(a net.Addr) { listened <- a }) }()
	var addr net.Addr
	select {
	case addr = <-listened:
	case err := <-done:
		t.Fatalf("serve returned before listening: %v", err)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	for _, user := range []string{"alice", "bob"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr.String()+"/.greenroom/assign",
			strings.NewReader(`{"session_id":"live","user":"`+user+`"}`))
		req.Header.Set("Authorization", "Bearer "+hookSecret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"assigned": true}` {
			t.Errorf("%s: %d %q", user, resp.StatusCode, body)
		}
	}
	if st, _ := readState(cfg.statePath); st.User != "bob" {
		t.Errorf("state %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve after cancel: %v", err)
	}
	if strings.Contains(logs.String(), hookSecret) || strings.Contains(logs.String(), "Authorization") {
		t.Errorf("the log names the secret:\n%s", logs.String())
	}
}

func TestEnvDoesNotPrintTheAssignSecret(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := runEnv([]string{"GREENROOM_ASSIGN_SECRET=" + hookSecret, "GREENROOM_SESSION_ID=s1", "PATH=/"}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), hookSecret) || !strings.Contains(out.String(), "GREENROOM_ASSIGN_SECRET=(set, not shown)\n") ||
		!strings.Contains(out.String(), "GREENROOM_SESSION_ID=s1\n") {
		t.Errorf("env printed:\n%s", out.String())
	}
}

func TestUsageNamesTheAssignHook(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	run(context.Background(), []string{"help"}, envMap(nil), &stdout, &stderr)
	for _, want := range []string{"POST /.greenroom/assign", "GREENROOM_ASSIGN_SECRET", "401", "404", "409"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

// lockedWriter serialises writes: serve logs from more than one goroutine.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Through the gateway the page names the user the gateway let in
// (X-Greenroom-User), escaped.
func TestThePageNamesTheViewerTheGatewaySays(t *testing.T) {
	t.Parallel()
	h := newHandler(serverConfig{statePath: filepath.Join(t.TempDir(), "state.json"), sessionID: "sess-9"})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Greenroom-User", "alice<b>")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if body := rec.Body.String(); !strings.Contains(body, "Viewed through the gateway by alice&lt;b&gt;") {
		t.Fatalf("page without the viewer:\n%s", body)
	}
	if body := get(t, h, "/").Body.String(); strings.Contains(body, "Viewed through the gateway") {
		t.Fatalf("a page not seen through the gateway names a viewer:\n%s", body)
	}
}
