package service_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// Issue 11, point 1: a workspace's assign_hook is stored and answered as
// written, null when there is none; a PATCH with null clears it. Every
// request and answer here is checked against openapi.yaml by the harness.
func TestWorkspaceAssignHookIsStoredAndCleared(t *testing.T) {
	h := newHarness(t)
	hook := obj{"path": "/.greenroom/assign", "timeout": "250ms"}
	ws := h.create("workspaces", obj{"name": "hooked", "image": "greenroom/demo:latest", "assign_hook": hook})
	sameHook := func(step string, got obj, want obj) {
		t.Helper()
		v, ok := got["assign_hook"]
		if !ok {
			t.Errorf("%s: no assign_hook in %v", step, got)
			return
		}
		if want == nil {
			if v != nil {
				t.Errorf("%s: assign_hook %v, want null", step, v)
			}
			return
		}
		m, _ := v.(map[string]any)
		if len(m) != len(want) {
			t.Errorf("%s: assign_hook %v, want %v", step, v, want)
		}
		for k, wv := range want {
			if m[k] != wv {
				t.Errorf("%s: assign_hook.%s %v, want %v", step, k, m[k], wv)
			}
		}
	}
	sameHook("create", ws, hook)
	var got obj
	h.must(200, "GET", "/api/v1/workspaces/hooked", nil, &got)
	sameHook("GET", got, hook)
	var list struct{ Items []obj }
	h.must(200, "GET", "/api/v1/workspaces", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("list %v", list.Items)
	}
	sameHook("list", list.Items[0], hook)

	// The provisioner reads the column with the same parser.
	var stored []byte
	if err := h.deps.DB.Get(&stored, `SELECT assign_hook FROM workspaces WHERE name = 'hooked'`); err != nil {
		t.Fatal(err)
	}
	parsed, ok, errs := containerconfig.ParseAssignHook(stored)
	if !ok || len(errs) > 0 || parsed.Path != "/.greenroom/assign" || parsed.Timeout != 250*time.Millisecond {
		t.Errorf("stored %s parses as %+v %v %v", stored, parsed, ok, errs)
	}

	// Another field's change keeps it.
	h.must(200, "PATCH", "/api/v1/workspaces/hooked", obj{"enabled": false}, &got)
	sameHook("PATCH enabled", got, hook)

	// Replaced as a whole; an absent timeout stays absent (it means 5s).
	// The hook is read at each assignment: no new revision.
	h.must(200, "PATCH", "/api/v1/workspaces/hooked", obj{"assign_hook": obj{"path": "/ready"}}, &got)
	sameHook("PATCH hook", got, obj{"path": "/ready"})
	if got["revision"] != ws["revision"] {
		t.Errorf("revision %v after changing the hook, want %v", got["revision"], ws["revision"])
	}

	// null clears it, in the answer, on GET and in the column.
	h.must(200, "PATCH", "/api/v1/workspaces/hooked", obj{"assign_hook": nil}, &got)
	sameHook("PATCH null", got, nil)
	h.must(200, "GET", "/api/v1/workspaces/hooked", nil, &got)
	sameHook("GET after clearing", got, nil)
	var isNull bool
	if err := h.deps.DB.Get(&isNull, `SELECT assign_hook IS NULL FROM workspaces WHERE name = 'hooked'`); err != nil || !isNull {
		t.Errorf("column after clearing: NULL %v (%v)", isNull, err)
	}

	// None unless given, or given as null.
	sameHook("create without", h.create("workspaces", obj{"name": "plain", "image": "x"}), nil)
	sameHook("create with null", h.create("workspaces", obj{"name": "nulled", "image": "x", "assign_hook": nil}), nil)
	// Both may be declared (the hook runs, the exec is skipped).
	both := h.create("workspaces", obj{"name": "both", "image": "x", "assign_hook": obj{"path": "/a"},
		"docker_exec_config": obj{"assign": obj{"cmd": "true", "environment": obj{"WHO": "{username}"}}}})
	sameHook("create with both", both, obj{"path": "/a"})
}

func TestAssignHookErrorsNameTheField(t *testing.T) {
	h := newHarness(t)
	h.create("workspaces", obj{"name": "demo", "image": "x", "assign_hook": obj{"path": "/a"}})
	before := h.outboxRows()
	for _, tc := range []struct {
		name  string
		hook  any
		field string
	}{
		{"no path", obj{"timeout": "5s"}, "assign_hook.path"},
		{"relative path", obj{"path": "assign"}, "assign_hook.path"},
		{"unclean path", obj{"path": "/a/../b"}, "assign_hook.path"},
		{"path with a query", obj{"path": "/a?x=1"}, "assign_hook.path"},
		{"malformed timeout", obj{"path": "/a", "timeout": "forever"}, "assign_hook.timeout"},
		{"timeout beyond a minute", obj{"path": "/a", "timeout": "2m"}, "assign_hook.timeout"},
		{"negative timeout", obj{"path": "/a", "timeout": "-1s"}, "assign_hook.timeout"},
		{"unknown key", obj{"path": "/a", "retries": 3}, "assign_hook.retries"},
		{"not an object", "/a", "assign_hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.in(t)
			for _, call := range []struct {
				method, path string
				body         obj
			}{
				{"POST", "/api/v1/workspaces", obj{"name": "w2", "image": "x", "assign_hook": tc.hook}},
				{"PATCH", "/api/v1/workspaces/demo", obj{"assign_hook": tc.hook}},
			} {
				p := h.problem(http.StatusBadRequest, tc.field, call.method, call.path, call.body)
				if !strings.HasPrefix(p.Detail, tc.field+": ") {
					t.Errorf("%s: detail %q does not start with the field", call.method, p.Detail)
				}
			}
		})
	}
	if after := h.outboxRows(); after != before {
		t.Errorf("outbox grew from %d to %d: refused changes must announce nothing", before, after)
	}
	var got obj
	h.must(200, "GET", "/api/v1/workspaces/demo", nil, &got)
	if hook, _ := got["assign_hook"].(map[string]any); !reflect.DeepEqual(hook, map[string]any{"path": "/a"}) {
		t.Errorf("refused patches changed the hook: %v", got["assign_hook"])
	}
	h.must(404, "GET", "/api/v1/workspaces/w2", nil, nil)
}

// A staged container's secret (sessions.assign_secret) is the provisioner's
// alone: no answer of the API holds it, nor a key of that name.
func TestNoAnswerShowsTheAssignSecret(t *testing.T) {
	h := newHarness(t)
	w := h.world()
	h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"assign_hook": obj{"path": "/.greenroom/assign"}}, nil)
	sc := h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1})
	staged := h.insertSession(w, "", sessions.Staged, sc.str("id"))
	running := h.runningWithLimits(w, "req-secret", sessions.Limits{KeepaliveExpiration: time.Hour})
	secret := "hook-secret-" + uuid.NewString()
	h.deps.DB.MustExec(`UPDATE sessions SET assign_secret = $1 || id WHERE id = ANY($2)`,
		secret, "{"+staged.ID+","+running.ID+"}")

	clean := func(what string, res response) {
		t.Helper()
		if res.Status/100 != 2 {
			t.Fatalf("%s: status %d: %s", what, res.Status, res.Body)
		}
		if bytes.Contains(res.Body, []byte("assign_secret")) || bytes.Contains(res.Body, []byte(secret)) {
			t.Errorf("%s answers the assign secret: %s", what, res.Body)
		}
		if !json.Valid(res.Body) {
			t.Errorf("%s: not JSON: %s", what, res.Body)
		}
	}
	listed := h.call("GET", "/api/v1/sessions", nil)
	clean("GET /api/v1/sessions", listed)
	if n := len(decodeAs[struct{ Items []obj }](t, listed).Items); n != 2 {
		t.Errorf("listed %d sessions, want 2: %s", n, listed.Body)
	}
	clean("GET ?status=staged", h.call("GET", "/api/v1/sessions?status=staged", nil))
	clean("GET ?staging_config=", h.call("GET", "/api/v1/sessions?staging_config="+sc.str("id"), nil))
	clean("GET staged", h.call("GET", "/api/v1/sessions/"+staged.ID, nil))
	clean("GET running", h.call("GET", "/api/v1/sessions/"+running.ID, nil))
	clean("POST again for the running one", h.call("POST", "/api/v1/sessions", sessionRequest("request_id", "req-secret")))
	clean("keepalive", h.call("POST", "/api/v1/sessions/"+running.ID+"/keepalive", nil))
	clean("GET workspace", h.call("GET", "/api/v1/workspaces/demo", nil))
	clean("GET staging config", h.call("GET", "/api/v1/staging-configs/"+sc.str("id"), nil))

	// The secret is there, for the provisioner.
	var n int
	if err := h.deps.DB.Get(&n, `SELECT count(*) FROM sessions WHERE assign_secret LIKE $1 || '%'`, secret); err != nil || n != 2 {
		t.Fatalf("%d sessions hold the secret (%v), want 2", n, err)
	}
}
