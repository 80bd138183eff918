package domain_test

import (
	"encoding/json"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

func TestAssignHookErrorsNameTheKeyBelowTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
	}{
		{"no path", `{"name":"w","image":"i","assign_hook":{"timeout":"5s"}}`, "assign_hook.path"},
		{"empty object", `{"name":"w","image":"i","assign_hook":{}}`, "assign_hook.path"},
		{"relative path", `{"name":"w","image":"i","assign_hook":{"path":"assign"}}`, "assign_hook.path"},
		{"unclean path", `{"name":"w","image":"i","assign_hook":{"path":"/a/../assign"}}`, "assign_hook.path"},
		{"path with a query", `{"name":"w","image":"i","assign_hook":{"path":"/assign?x=1"}}`, "assign_hook.path"},
		{"path not a string", `{"name":"w","image":"i","assign_hook":{"path":3}}`, "assign_hook.path"},
		{"malformed timeout", `{"name":"w","image":"i","assign_hook":{"path":"/a","timeout":"forever"}}`, "assign_hook.timeout"},
		{"timeout too long", `{"name":"w","image":"i","assign_hook":{"path":"/a","timeout":"2m"}}`, "assign_hook.timeout"},
		{"negative timeout", `{"name":"w","image":"i","assign_hook":{"path":"/a","timeout":"-1s"}}`, "assign_hook.timeout"},
		{"timeout a number", `{"name":"w","image":"i","assign_hook":{"path":"/a","timeout":5}}`, "assign_hook.timeout"},
		{"unknown key", `{"name":"w","image":"i","assign_hook":{"path":"/a","retries":3}}`, "assign_hook.retries"},
		{"not an object", `{"name":"w","image":"i","assign_hook":"/a"}`, "assign_hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstError[domain.WorkspaceCreate](t, tc.body); got.Field != tc.field {
				t.Errorf("create: got %q: %q, want field %q", got.Field, got.Detail, tc.field)
			}
			// The same hook in a PATCH body is refused the same way.
			var body map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.body), &body); err != nil {
				t.Fatal(err)
			}
			patch, _ := json.Marshal(map[string]json.RawMessage{"assign_hook": body["assign_hook"]})
			if got := firstError[domain.WorkspaceUpdate](t, string(patch)); got.Field != tc.field {
				t.Errorf("update: got %q: %q, want field %q", got.Field, got.Detail, tc.field)
			}
		})
	}
}

func TestAssignHookIsStoredAsWrittenAndNullIsNone(t *testing.T) {
	decode := func(body string) domain.WorkspaceUpdate {
		t.Helper()
		var in domain.WorkspaceUpdate
		if errs := domain.Decode([]byte(body), &in, ""); len(errs) > 0 {
			t.Fatal(errs)
		}
		if errs := in.Validate(); len(errs) > 0 {
			t.Fatalf("%s: %v", body, errs)
		}
		return in
	}
	for _, body := range []string{`{"name":"w","image":"i"}`, `{"name":"w","image":"i","assign_hook":null}`} {
		in := decode(body)
		if w := domain.WorkspaceCreate(in).Workspace(); w.AssignHook != nil {
			t.Errorf("%s: hook %s, want none", body, *w.AssignHook)
		}
	}

	w := domain.WorkspaceCreate(decode(`{"name":"w","image":"i","assign_hook":{"timeout":"250ms","path":"/.greenroom/assign"}}`)).Workspace()
	if w.AssignHook == nil {
		t.Fatal("no hook stored")
	}
	// The provisioner reads what is stored with the same parser.
	hook, ok, errs := containerconfig.ParseAssignHook(*w.AssignHook)
	if !ok || len(errs) > 0 || hook.Path != "/.greenroom/assign" || hook.Timeout.String() != "250ms" {
		t.Errorf("stored %s parses as %+v %v %v", *w.AssignHook, hook, ok, errs)
	}
	out, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		AssignHook map[string]string `json:"assign_hook"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.AssignHook) != 2 || got.AssignHook["path"] != "/.greenroom/assign" || got.AssignHook["timeout"] != "250ms" {
		t.Errorf("answered %s", out)
	}

	// Absent keeps it; null clears it.
	decode(`{"enabled":false}`).Apply(&w)
	if w.AssignHook == nil {
		t.Error("a PATCH without assign_hook cleared it")
	}
	decode(`{"assign_hook":null}`).Apply(&w)
	if w.AssignHook != nil {
		t.Errorf("assign_hook null left %s", *w.AssignHook)
	}
	if out, _ := json.Marshal(w); !json.Valid(out) || !containsNull(t, out, "assign_hook") {
		t.Errorf("no hook is not answered as null: %s", out)
	}
}

func containsNull(t *testing.T, raw []byte, key string) bool {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	v, ok := m[key]
	return ok && string(v) == "null"
}
