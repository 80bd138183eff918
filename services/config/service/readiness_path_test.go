package service_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestReadinessPathMustBeAnHTTPPath: the provisioner appends
// readiness_path to http://agent:port, so a value that is not an HTTP
// path is a 400 naming the field, in a create and in a patch, and changes
// nothing; a path (with a query) and empty (a TCP probe) are stored.
func TestReadinessPathMustBeAnHTTPPath(t *testing.T) {
	h := newHarness(t)
	h.create("workspaces", obj{"name": "demo", "image": "greenroom/demo:latest", "readiness_path": "/healthz"})
	before := h.outboxRows()
	for _, bad := range []string{"healthz", "@evil.example/steal", "//evil.example/x", "http://evil.example/healthz",
		"/health z", "/healthz\r\nHost: evil", "/x#top", "/%zz"} {
		t.Run(bad, func(t *testing.T) {
			hh := h.in(t)
			p := hh.problem(http.StatusBadRequest, "readiness_path", "POST", "/api/v1/workspaces",
				obj{"name": "w2", "image": "x", "readiness_path": bad})
			if !strings.HasPrefix(p.Detail, "readiness_path: ") {
				t.Errorf("detail %q does not start with the field", p.Detail)
			}
			hh.problem(http.StatusBadRequest, "readiness_path", "PATCH", "/api/v1/workspaces/demo", obj{"readiness_path": bad})
		})
	}
	if after := h.outboxRows(); after != before {
		t.Errorf("outbox grew from %d to %d: refused changes must announce nothing", before, after)
	}
	var ws obj
	h.must(200, "GET", "/api/v1/workspaces/demo", nil, &ws)
	if ws.str("readiness_path") != "/healthz" {
		t.Errorf("readiness_path %q after refused patches", ws.str("readiness_path"))
	}
	for _, good := range []string{"/ready?deep=1", "/", ""} {
		h.must(200, "PATCH", "/api/v1/workspaces/demo", obj{"readiness_path": good}, &ws)
		if ws.str("readiness_path") != good {
			t.Errorf("readiness_path %q, want %q", ws.str("readiness_path"), good)
		}
	}
}
