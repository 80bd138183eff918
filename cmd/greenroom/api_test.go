package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const testToken = "t0ken"

// fakeAPI is a minimal admin API: it checks the bearer token, answers
// problem details like the config service, stores POSTed objects by name
// (409 on a repeat) and serves canned GET answers.
type fakeAPI struct {
	t *testing.T
	*httptest.Server

	mu      sync.Mutex
	created map[string][]map[string]any // collection path → bodies
	gets    map[string]func(r *http.Request) any
	queries []string
	patched map[string]map[string]any // path → last body
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, created: map[string][]map[string]any{}, gets: map[string]func(*http.Request) any{},
		patched: map[string]map[string]any{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) env() map[string]string {
	return map[string]string{"GREENROOM_API_URL": f.URL, "GREENROOM_ADMIN_TOKEN": testToken}
}

func problemJSON(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		w.Header().Set("WWW-Authenticate", "Bearer")
		problemJSON(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		f.queries = append(f.queries, r.URL.RawQuery)
		get, ok := f.gets[r.URL.Path]
		if !ok {
			problemJSON(w, http.StatusNotFound, "no such path "+r.URL.Path)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(get(r))
	case http.MethodPost:
		if r.Header.Get("Content-Type") != "application/json" {
			problemJSON(w, http.StatusBadRequest, "body must be JSON")
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			problemJSON(w, http.StatusBadRequest, err.Error())
			return
		}
		key := fmt.Sprint(body["name"], body["username"], body["zone"], body["workspace"])
		for _, prev := range f.created[r.URL.Path] {
			if fmt.Sprint(prev["name"], prev["username"], prev["zone"], prev["workspace"]) == key {
				problemJSON(w, http.StatusConflict, "already exists")
				return
			}
		}
		f.created[r.URL.Path] = append(f.created[r.URL.Path], body)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(raw)
	case http.MethodPatch:
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			problemJSON(w, http.StatusBadRequest, err.Error())
			return
		}
		f.patched[r.URL.Path] = body
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	default:
		problemJSON(w, http.StatusMethodNotAllowed, r.Method)
	}
}

func (f *fakeAPI) patchedAt(path string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.patched[path]
}

func (f *fakeAPI) createdIn(path string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.created[path]...)
}

func (f *fakeAPI) lastQuery() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return ""
	}
	return f.queries[len(f.queries)-1]
}

const sessionList = `{"items":[
 {"id":"0192f3a4-0000-7000-8000-000000000001","request_id":null,"user":null,"workspace":"demo","zone":"zone-a",
  "agent":"agent-zone-a","container_id":"c1","url":"http://127.0.0.1:32768/","origin":"staged","status":"staged",
  "staging_config_id":"0192f3a4-0000-7000-8000-0000000000aa","failure_reason":"","created_at":"2025-11-24T06:00:00Z",
  "staged_at":"2025-11-24T06:00:01Z","assigned_at":null,"expires_at":"2025-11-24T07:00:01Z","destroyed_at":null},
 {"id":"0192f3a4-0000-7000-8000-000000000002","request_id":"r1","user":"alice","workspace":"demo","zone":"zone-a",
  "agent":"agent-zone-a","container_id":"c2","url":"http://127.0.0.1:32769/","origin":"staged","status":"running",
  "staging_config_id":"0192f3a4-0000-7000-8000-0000000000aa","failure_reason":"","created_at":"2025-11-24T05:00:00Z",
  "staged_at":"2025-11-24T05:00:01Z","assigned_at":"2025-11-24T06:10:00Z","expires_at":null,"destroyed_at":null}
]}`

func TestSessionsTableShowsNoUserForStagedSessions(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/sessions"] = func(*http.Request) any { return json.RawMessage(sessionList) }
	out, errOut, code := runCLI(t, api.env(), "sessions")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", out)
	}
	header := lines[0]
	userCol := strings.Index(header, "USER")
	wsCol := strings.Index(header, "WORKSPACE")
	if !strings.HasPrefix(header, "ID") || userCol < 0 || wsCol < 0 {
		t.Fatalf("header %q", header)
	}
	if cell := strings.TrimSpace(lines[1][userCol:wsCol]); cell != "" {
		t.Errorf("staged session shows user %q, want none", cell)
	}
	if cell := strings.TrimSpace(lines[2][userCol:wsCol]); cell != "alice" {
		t.Errorf("assigned session shows user %q, want alice", cell)
	}
	for _, want := range []string{"staged", "running", "agent-zone-a", "http://127.0.0.1:32769/"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestSessionsPassesFiltersAndResolvesStagingConfigNames(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/sessions"] = func(*http.Request) any { return json.RawMessage(`{"items":[]}`) }
	api.gets["/api/v1/staging-configs"] = func(*http.Request) any {
		return json.RawMessage(`{"items":[{"id":"0192f3a4-0000-7000-8000-0000000000aa","zone":"zone-a","workspace":"demo",
		  "desired_sessions":3,"current_sessions":3,"status":"ok","last_error":""}]}`)
	}
	out, errOut, code := runCLI(t, api.env(), "sessions", "--user", "alice", "--status", "running",
		"--staging-config", "zone-a/demo", "--origin", "staged")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if q := api.lastQuery(); q != "limit=1000&origin=staged&staging_config=0192f3a4-0000-7000-8000-0000000000aa&status=running&user=alice" {
		t.Errorf("query %q", q)
	}
	if !strings.Contains(out, "(no sessions)") {
		t.Errorf("output %q", out)
	}
	if _, errOut, code := runCLI(t, api.env(), "sessions", "--staging-config", "zone-b/demo"); code != exitFailure ||
		!strings.Contains(errOut, `no staging config for zone "zone-b"`) {
		t.Errorf("unknown staging config: exit %d, %q", code, errOut)
	}
}

func TestSessionsJSONIsTheAPIAnswer(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/sessions"] = func(*http.Request) any { return json.RawMessage(sessionList) }
	out, _, code := runCLI(t, api.env(), "sessions", "--json")
	var got struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK || len(got.Items) != 2 || got.Items[0]["user"] != nil {
		t.Fatalf("exit %d, %v, %s", code, err, out)
	}
}

func TestSessionsWithoutTokenExplainsTheToken(t *testing.T) {
	api := newFakeAPI(t)
	_, errOut, code := runCLI(t, map[string]string{"GREENROOM_API_URL": api.URL}, "sessions")
	if code != exitFailure || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "GREENROOM_ADMIN_TOKEN") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

func TestSessionsShowTheServerOfAServerSession(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/sessions"] = func(*http.Request) any {
		return json.RawMessage(`{"items":[{"id":"0192f3a4-0000-7000-8000-000000000003","request_id":"r2","user":"alice",
		  "workspace":"desk","zone":"zone-a","agent":null,"server":"desk-1","container_id":"","url":"","origin":"on_demand",
		  "status":"running","staging_config_id":null,"failure_reason":"","created_at":"2025-11-24T05:00:00Z"}]}`)
	}
	out, errOut, code := runCLI(t, api.env(), "sessions")
	if code != exitOK || !strings.Contains(out, "AGENT/SERVER") || !strings.Contains(out, "server desk-1") {
		t.Fatalf("exit %d, %s:\n%s", code, errOut, out)
	}
}
