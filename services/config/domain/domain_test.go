package domain_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

func ptr[T any](v T) *T { return &v }

// firstError decodes body into a T, validates it, and returns the first
// field error (zero when valid).
func firstError[T interface{ Validate() domain.FieldErrors }](t *testing.T, body string) domain.FieldError {
	t.Helper()
	var in T
	if errs := domain.Decode([]byte(body), &in, ""); len(errs) > 0 {
		return errs[0]
	}
	if errs := in.Validate(); len(errs) > 0 {
		return errs[0]
	}
	return domain.FieldError{}
}

func TestBodyErrorsNameTheFirstOffendingField(t *testing.T) {
	for _, tc := range []struct {
		name, body, field, detail string
	}{
		{"unknown field", `{"name":"eu","colour":"red"}`, "colour", "not a known field"},
		{"wrong type", `{"name":"eu","priority":"high"}`, "priority", "must be an integer, not string"},
		{"not an integer", `{"name":"eu","priority":1.5}`, "priority", "must be an integer, not number 1.5"},
		{"integer overflow", `{"name":"eu","priority":99999999999}`, "priority", "out of range"},
		{"missing required", `{"priority":5}`, "name", "is required"},
		{"null for a non-nullable field", `{"name":"eu","priority":null}`, "priority", "must not be null"},
		{"out of range", `{"name":"eu","priority":0}`, "priority", "at least 1"},
		{"bad enum", `{"name":"eu","load_balancing":"random"}`, "load_balancing", "least_load, most_load"},
		{"bad name pattern", `{"name":"EU West"}`, "name", "not a valid name"},
		{"name too long", `{"name":"` + strings.Repeat("a", 64) + `"}`, "name", "not a valid name"},
		{"first of several, in schema order", `{"priority":0,"name":"Bad"}`, "name", "not a valid name"},
		{"not an object", `[1,2]`, "", "must be a JSON object, not array"},
		{"malformed", `{"name":`, "", "malformed JSON"},
		{"empty body", ``, "", "a JSON object is required"},
		{"trailing data", `{"name":"eu"} {}`, "", "unexpected data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := firstError[domain.ZoneCreate](t, tc.body)
			if got.Field != tc.field || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("got %q: %q, want %q: …%s…", got.Field, got.Detail, tc.field, tc.detail)
			}
		})
	}
}

func TestNestedBodyErrorsNameTheNestedField(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
	}{
		{"volume mapping without bind", `{"name":"w","image":"i","volume_mappings":{"/srv":{"mode":"ro"}}}`, "volume_mappings./srv.bind"},
		{"volume mapping bad mode", `{"name":"w","image":"i","volume_mappings":{"/srv":{"bind":"/x","mode":"rx"}}}`, "volume_mappings./srv.mode"},
		{"volume mapping not an object", `{"name":"w","image":"i","volume_mappings":{"/srv":"x"}}`, "volume_mappings./srv"},
		{"assign without cmd", `{"name":"w","image":"i","docker_exec_config":{"assign":{"user":"root"}}}`, "docker_exec_config.assign.cmd"},
		{"assign unknown key", `{"name":"w","image":"i","docker_exec_config":{"assign":{"cmd":"x","shell":"sh"}}}`, "docker_exec_config.assign.shell"},
		{"a command Greenroom does not run", `{"name":"w","image":"i","docker_exec_config":{"go":{"cmd":"x"}}}`, "docker_exec_config.go"},
		{"cmd a shell cannot split", `{"name":"w","image":"i","docker_exec_config":{"assign":{"cmd":"echo 'open"}}}`, "docker_exec_config.assign.cmd"},
		{"environment name with =", `{"name":"w","image":"i","docker_exec_config":{"first_launch":{"cmd":"x","environment":{"A=B":"1"}}}}`, "docker_exec_config.first_launch.environment.A=B"},
		{"assign empty argv", `{"name":"w","image":"i","docker_exec_config":{"assign":{"cmd":[]}}}`, "docker_exec_config.assign.cmd"},
		{"assign cmd of numbers", `{"name":"w","image":"i","docker_exec_config":{"assign":{"cmd":[1]}}}`, "docker_exec_config.assign.cmd"},
		{"assign privileged not a boolean", `{"name":"w","image":"i","docker_exec_config":{"assign":{"cmd":"x","privileged":"yes"}}}`, "docker_exec_config.assign.privileged"},
		{"run_config not an object", `{"name":"w","image":"i","run_config":[]}`, "run_config"},
		{"labels of numbers", `{"name":"w","image":"i","include_labels":["a",1]}`, "include_labels[1]"},
		{"an Optional struct member of the wrong type", `{"name":"w","image":"i","assign_hook":{"path":"/x","timeout":5}}`, "assign_hook.timeout"},
		{"port out of range", `{"name":"w","image":"i","port":70000}`, "port"},
		{"cores zero", `{"name":"w","image":"i","cores":0}`, "cores"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstError[domain.WorkspaceCreate](t, tc.body); got.Field != tc.field {
				t.Errorf("got %q: %q, want field %q", got.Field, got.Detail, tc.field)
			}
		})
	}
	valid := `{"name":"w","image":"i","volume_mappings":{"/srv":{"bind":"/x","mode":"ro","uid":1000,"gid":1000}},
		"docker_exec_config":{"assign":{"cmd":["sh","-c","true"],"user":"root","privileged":false,"environment":{"A":"1"},"workdir":"/"},
		"first_launch":{"cmd":"echo first"}}}`
	if got := firstError[domain.WorkspaceCreate](t, valid); got != (domain.FieldError{}) {
		t.Errorf("valid workspace refused: %v", got)
	}
}

func TestCreateFillsDefaultsAndUpdateChangesOnlyWhatIsPresent(t *testing.T) {
	var in domain.ZoneCreate
	if errs := domain.Decode([]byte(`{"name":"eu"}`), &in, ""); errs != nil {
		t.Fatal(errs)
	}
	z := in.Zone()
	if z.AllowOriginDomain != domain.RequestHost || z.UpstreamAuthAddress != domain.RequestHost ||
		z.Priority != 100 || z.LoadBalancing != domain.LeastLoad || z.SearchAlternateZones {
		t.Errorf("defaults not applied: %+v", z)
	}

	a := domain.Agent{Name: "a", Pool: ptr("p"), Cores: 2, Labels: domain.Labels{"x"}}
	var up domain.AgentUpdate
	if errs := domain.Decode([]byte(`{"pool":null,"cores":4}`), &up, ""); errs != nil {
		t.Fatal(errs)
	}
	up.Apply(&a)
	if a.Pool != nil || a.Cores != 4 || a.Name != "a" || len(a.Labels) != 1 {
		t.Errorf("patch misapplied: %+v", a)
	}
}

func TestStagingNeedsAZoneWithARealDomain(t *testing.T) {
	for _, tc := range []struct {
		zone domain.Zone
		want string
	}{
		{domain.Zone{AllowOriginDomain: domain.RequestHost, UpstreamAuthAddress: domain.RequestHost}, "allow_origin_domain"},
		{domain.Zone{AllowOriginDomain: "example.com", UpstreamAuthAddress: domain.RequestHost}, "upstream_auth_address"},
		{domain.Zone{AllowOriginDomain: "example.com", UpstreamAuthAddress: "auth.example.com"}, ""},
	} {
		if got := tc.zone.StagingBlocker(); got != tc.want {
			t.Errorf("StagingBlocker(%+v) = %q, want %q", tc.zone, got, tc.want)
		}
	}
	var up domain.ZoneUpdate
	_ = domain.Decode([]byte(`{"priority":3,"upstream_auth_address":"$request_host$"}`), &up, "")
	if got := up.SetsRequestHost(); got != "upstream_auth_address" {
		t.Errorf("SetsRequestHost = %q", got)
	}
	up = domain.ZoneUpdate{}
	_ = domain.Decode([]byte(`{"allow_origin_domain":"example.com"}`), &up, "")
	if got := up.SetsRequestHost(); got != "" {
		t.Errorf("SetsRequestHost = %q for a real domain", got)
	}
}

func TestSessionWaitIsBounded(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 60 * time.Second, true},
		{"0", 0, true},
		{"500ms", 500 * time.Millisecond, true},
		{"2m", 2 * time.Minute, true},
		{"300s", 300 * time.Second, true},
		{"301s", 0, false},
		{"-1s", 0, false},
		{"+1s", 0, false},
		{"soon", 0, false},
		{"10", 0, false},
	} {
		got, err := domain.ParseWait(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseWait(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSameRequestIDMustBeTheSameRequest(t *testing.T) {
	s := domain.Session{UserID: ptr("u1"), WorkspaceID: "w1", ZoneID: "z1"}
	home := domain.Zone{ID: "z1"}
	other := domain.Zone{ID: "z2"}
	searching := domain.Zone{ID: "z2", SearchAlternateZones: true}
	for _, tc := range []struct {
		name         string
		user, ws     string
		zone         domain.Zone
		wantMismatch string
	}{
		{"same request", "u1", "w1", home, ""},
		{"other user", "u2", "w1", home, "user"},
		{"other workspace", "u1", "w2", home, "workspace"},
		{"other zone", "u1", "w1", other, "zone"},
		{"zone that searches alternates may have placed it elsewhere", "u1", "w1", searching, ""},
	} {
		if got := domain.RequestMismatch(s, tc.user, tc.ws, tc.zone); got != tc.wantMismatch {
			t.Errorf("%s: RequestMismatch = %q, want %q", tc.name, got, tc.wantMismatch)
		}
	}
}

func TestSessionRequestIDComesFromBodyOrHeader(t *testing.T) {
	body := func(s string) domain.SessionRequest {
		var in domain.SessionRequest
		if errs := domain.Decode([]byte(s), &in, ""); errs != nil {
			t.Fatal(errs)
		}
		return in
	}
	in := body(`{"user":"u","workspace":"w","zone":"z","request_id":"r1"}`)
	if errs := in.Validate("r2"); len(errs) == 0 || errs[0].Field != domain.IdempotencyKeyField {
		t.Errorf("differing Idempotency-Key accepted: %v", errs)
	}
	if errs := in.Validate("r1"); len(errs) != 0 || in.RequestIDOf("r1") != "r1" {
		t.Errorf("equal Idempotency-Key refused: %v", errs)
	}
	in = body(`{"user":"u","workspace":"w","zone":"z"}`)
	if got := in.RequestIDOf("key"); got != "key" {
		t.Errorf("RequestIDOf = %q, want the header's", got)
	}
	if errs := in.Validate(strings.Repeat("k", 201)); len(errs) == 0 {
		t.Error("over-long Idempotency-Key accepted")
	}
}

func TestEmptyListsAndObjectsAreNeverNull(t *testing.T) {
	b, err := json.Marshal(domain.Workspace{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"include_labels":[]`, `"volume_mappings":{}`, `"run_config":{}`, `"server_pool":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}

// A zone's domains are where the gateway serves and checks: a host name
// for the origin (a scheme or port would never match a Host), a host[:port]
// or URL for the auth address.
func TestZoneDomainsAreHostNamesTheGatewayCanUse(t *testing.T) {
	for _, tc := range []struct {
		origin, auth string
		bad          []string
	}{
		{"desktops.example.com", "127.0.0.1:8080", nil},
		{"greenroom.localhost", "https://auth.example.com/", nil},
		{domain.RequestHost, domain.RequestHost, nil},
		{"10.0.0.5", "config.internal", nil},
		{"desk.example.com:8443", "auth.example.com:0", []string{"allow_origin_domain", "upstream_auth_address"}},
		{"https://desk.example.com", "ftp://auth.example.com", []string{"allow_origin_domain", "upstream_auth_address"}},
		{"", "http://auth.example.com/?x=1", []string{"allow_origin_domain", "upstream_auth_address"}},
	} {
		errs := domain.ZoneCreate{Name: domain.Optional[string]{Set: true, Value: "z"},
			AllowOriginDomain:   domain.Optional[string]{Set: true, Value: tc.origin},
			UpstreamAuthAddress: domain.Optional[string]{Set: true, Value: tc.auth}}.Validate()
		var fields []string
		for _, e := range errs {
			fields = append(fields, e.Field)
		}
		if strings.Join(fields, ",") != strings.Join(tc.bad, ",") {
			t.Errorf("%q / %q: errors on %v, want %v", tc.origin, tc.auth, fields, tc.bad)
		}
	}
}
