package domain_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// TestReadinessPathMustBeAnHTTPPath: readiness_path is appended to
// http://agent:port, so anything but a path ("@host/…", "//host/…", a
// scheme, whitespace) is refused naming the field, in a create and in a
// patch; empty (a TCP probe) and a path with a query are accepted.
func TestReadinessPathMustBeAnHTTPPath(t *testing.T) {
	for _, bad := range []string{"healthz", "@evil.example/x", "//evil.example/x", "http://evil.example/healthz",
		"/health z", "/health\nz", "/x#y", "/a%zz", "/\u0085"} {
		body, _ := json.Marshal(map[string]any{"name": "w", "image": "i", "readiness_path": bad})
		if got := firstError[domain.WorkspaceCreate](t, string(body)); got.Field != "readiness_path" || got.Detail == "" {
			t.Errorf("create with %q: %+v, want an error on readiness_path", bad, got)
		}
		body, _ = json.Marshal(map[string]any{"readiness_path": bad})
		if got := firstError[domain.WorkspaceUpdate](t, string(body)); got.Field != "readiness_path" {
			t.Errorf("patch with %q: %+v, want an error on readiness_path", bad, got)
		}
	}
	if got := firstError[domain.WorkspaceUpdate](t, `{"readiness_path":"@evil.example/x"}`); !strings.Contains(got.Detail, "start with /") {
		t.Errorf("detail %q does not say what a path is", got.Detail)
	}
	for _, ok := range []string{"", "/", "/healthz", "/ready?deep=1"} {
		body, _ := json.Marshal(map[string]any{"name": "w", "image": "i", "readiness_path": ok})
		if got := firstError[domain.WorkspaceCreate](t, string(body)); got.Field != "" {
			t.Errorf("create with %q refused: %+v", ok, got)
		}
	}
	if got := firstError[domain.WorkspaceUpdate](t, `{"readiness_path":null}`); got.Field != "readiness_path" {
		t.Errorf("null readiness_path: %+v", got)
	}
}

// TestRunConfigHardeningKeysAreValidated: security_opt and pids_limit are
// run_config keys like the others, a bad value named below the setting.
func TestRunConfigHardeningKeysAreValidated(t *testing.T) {
	for body, field := range map[string]string{
		`{"name":"w","image":"i","run_config":{"security_opt":["no-new-privileges=perhaps"]}}`:                                "run_config.security_opt[0]",
		`{"name":"w","image":"i","run_config":{"pids_limit":0}}`:                                                              "run_config.pids_limit",
		`{"name":"w","image":"i","run_config":{"security_opt":["no-new-privileges=false"],"pids_limit":-1,"cap_drop":"ALL"}}`: "",
	} {
		if got := firstError[domain.WorkspaceCreate](t, body); got.Field != field {
			t.Errorf("%s: %+v, want field %q", body, got, field)
		}
	}
	if got := firstError[domain.GroupCreate](t, `{"name":"g","run_config":{"pids_limit":"many"}}`); got.Field != "run_config.pids_limit" {
		t.Errorf("group: %+v", got)
	}
}
