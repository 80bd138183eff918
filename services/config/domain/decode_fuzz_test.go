package domain

// Fuzz tests of the admin API's bodies (issue 15, "bad input"): the strict
// decoder (Decode) and each resource's create and update body with its
// Validate, then what the service does with an accepted body (the
// resource it builds, an update applied) and what the provisioner and the
// gateway later read from it (libs/containerconfig's parsers, the zone's
// upstream_auth_address). `make fuzz` runs each for FUZZTIME; the seeds
// (and any crasher kept under testdata/fuzz) run with the other tests.

import (
	"bytes"
	"encoding/json"
	"net"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
)

// encodeBody writes a decoded body back as JSON: each Optional field that
// was present, null as null.
func encodeBody(t *testing.T, v any) []byte {
	t.Helper()
	out := map[string]any{}
	var walk func(rv reflect.Value)
	walk = func(rv reflect.Value) {
		for i := range rv.NumField() {
			sf, f := rv.Type().Field(i), rv.Field(i)
			if sf.Anonymous {
				walk(f)
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if !f.FieldByName("Set").Bool() {
				continue
			}
			if f.FieldByName("Null").Bool() {
				out[name] = nil
				continue
			}
			val := f.FieldByName("Value")
			switch {
			case val.CanInterface():
				out[name] = val.Interface()
			case val.Kind() == reflect.Bool: // an unexported embedded struct's
				out[name] = val.Bool()
			default:
				t.Fatalf("cannot encode field %s", name)
			}
		}
	}
	walk(reflect.ValueOf(v))
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("encoding a decoded body: %v", err)
	}
	return b
}

// bodyKind is one request body type: its name, and a check of one body.
type bodyKind struct {
	name  string
	check func(t *testing.T, body []byte)
}

// kindOf checks Decode into In: no panic; one error at most, with a
// detail, naming a field whenever the body is a valid JSON object (the
// API promises the offending field); an accepted body encodes and decodes
// to the same; and a body Validate accepts is used (accepted) without a
// panic.
func kindOf[In any](name string, validate func(In) FieldErrors, accepted func(t *testing.T, in In)) bodyKind {
	return bodyKind{name: name, check: func(t *testing.T, body []byte) {
		var in In
		errs := Decode(body, &in, "")
		if len(errs) > 1 || len(errs) == 1 && errs[0].Detail == "" {
			t.Fatalf("%s: Decode errors %v", name, errs)
		}
		if len(errs) == 1 {
			var obj map[string]any
			if json.Unmarshal(body, &obj) == nil && obj != nil && errs[0].Field == "" {
				t.Fatalf("%s: a JSON object refused without naming a field: %v\n%q", name, errs, body)
			}
			return
		}
		if field, bad := unstorable(body, ""); bad {
			t.Fatalf("%s: Decode accepted %s, which PostgreSQL cannot store", name, field)
		}
		enc := encodeBody(t, in)
		var again In
		if errs := Decode(enc, &again, ""); len(errs) > 0 {
			t.Fatalf("%s: an accepted body, re-encoded as %s, is refused: %v", name, enc, errs)
		}
		if enc2 := encodeBody(t, again); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: round trip changed the body:\n%s\n%s", name, enc, enc2)
		}
		if errs := validate(in); len(errs) > 0 {
			for _, e := range errs {
				if e.Field == "" || e.Detail == "" {
					t.Fatalf("%s: Validate error without field or detail: %v", name, errs)
				}
			}
			return
		}
		accepted(t, in)
	}}
}

// provisionable checks a workspace as the provisioner reads it: every
// setting parses, and is applied for a real user.
func provisionable(t *testing.T, w Workspace) {
	t.Helper()
	if _, errs := containerconfig.ParseRunConfig(w.RunConfig); len(errs) > 0 {
		t.Fatalf("run_config %s accepted, the provisioner refuses it: %v", w.RunConfig, errs)
	}
	if _, errs := containerconfig.ParseExecConfig(w.DockerExecConfig); len(errs) > 0 {
		t.Fatalf("docker_exec_config %s accepted, the provisioner refuses it: %v", w.DockerExecConfig, errs)
	}
	ms, errs := containerconfig.ParseVolumeMappings(w.VolumeMappings)
	if len(errs) > 0 {
		t.Fatalf("volume_mappings %s accepted, the provisioner refuses them: %v", w.VolumeMappings, errs)
	}
	tokens := containerconfig.Tokens{Username: "alice", UserID: "0192f3a4-5b6c-7d8e-9f01-23456789abcf", Workspace: "desk",
		SessionID: "0192f3a4-5b6c-7d8e-9f01-23456789abcd"}
	for _, m := range ms {
		if _, err := m.Render(tokens); err != nil {
			t.Fatalf("volume mapping %+v accepted, the provisioner refuses it: %v", m, err)
		}
	}
	if w.AssignHook != nil {
		if _, ok, errs := containerconfig.ParseAssignHook(*w.AssignHook); !ok && len(*w.AssignHook) > 0 && string(*w.AssignHook) != "{}" {
			t.Fatalf("assign_hook %s accepted, the provisioner refuses it: %v", *w.AssignHook, errs)
		}
	}
	if w.PersistentProfilePath != "" {
		if _, err := containerconfig.ProfilePath(w.PersistentProfilePath, tokens); err != nil {
			t.Fatalf("persistent_profile_path %q accepted, the provisioner refuses it: %v", w.PersistentProfilePath, err)
		}
	}
	if problem := containerconfig.CheckPath(w.HomeDirectory, false); w.HomeDirectory != "" && problem != "" {
		t.Fatalf("home_directory %q accepted: %s", w.HomeDirectory, problem)
	}
}

func groupProvisionable(t *testing.T, g Group) {
	t.Helper()
	if _, errs := containerconfig.ParseRunConfig(g.RunConfig); len(errs) > 0 {
		t.Fatalf("run_config %s accepted, the provisioner refuses it: %v", g.RunConfig, errs)
	}
	if _, errs := containerconfig.ParseVolumeMappings(g.VolumeMapping); len(errs) > 0 {
		t.Fatalf("volume_mapping %s accepted, the provisioner refuses it: %v", g.VolumeMapping, errs)
	}
	for _, d := range []*Duration{g.SessionTimeLimit, g.KeepaliveExpiration} {
		if d != nil && *d <= 0 {
			t.Fatalf("a session limit of %v accepted", time.Duration(*d))
		}
	}
}

// gatewayAuthBase is how the gateway reads a zone's upstream_auth_address
// (services/gateway/domain.AuthBase, another module): a host[:port] is an
// http:// URL.
func gatewayAuthBase(addr string) (*url.URL, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return url.Parse(addr)
}

// zoneServable checks a zone as the gateway reads it: the sign-in check
// goes to the host the admin wrote.
func zoneServable(t *testing.T, z Zone) {
	t.Helper()
	addr := z.UpstreamAuthAddress
	if addr == "" || addr == RequestHost {
		return
	}
	u, err := gatewayAuthBase(addr)
	if err != nil || u.Hostname() == "" {
		t.Fatalf("upstream_auth_address %q accepted, the gateway cannot use it: %v", addr, err)
	}
	if !strings.Contains(addr, "://") {
		host := addr
		if h, _, err := net.SplitHostPort(addr); err == nil {
			host = h
		}
		if !strings.EqualFold(u.Hostname(), host) {
			t.Fatalf("upstream_auth_address %q accepted, the gateway would ask host %q", addr, u.Hostname())
		}
	}
}

var bodyKinds = []bodyKind{
	kindOf("ZoneCreate", ZoneCreate.Validate, func(t *testing.T, in ZoneCreate) { zoneServable(t, in.Zone()) }),
	kindOf("ZoneUpdate", ZoneUpdate.Validate, func(t *testing.T, in ZoneUpdate) {
		z := ZoneCreate{}.Zone()
		in.Apply(&z)
		_ = in.SetsRequestHost()
		zoneServable(t, z)
	}),
	kindOf("PoolCreate", PoolCreate.Validate, func(t *testing.T, in PoolCreate) { _ = in.Pool() }),
	kindOf("PoolUpdate", PoolUpdate.Validate, func(t *testing.T, in PoolUpdate) { p := PoolCreate{}.Pool(); in.Apply(&p) }),
	kindOf("AgentCreate", AgentCreate.Validate, func(t *testing.T, in AgentCreate) { _ = in.Agent().CheckAddress() }),
	kindOf("AgentUpdate", AgentUpdate.Validate, func(t *testing.T, in AgentUpdate) {
		a := AgentCreate{}.Agent()
		in.Apply(&a)
		_ = a.CheckAddress()
	}),
	kindOf("ServerCreate", ServerCreate.Validate, func(t *testing.T, in ServerCreate) { _ = in.Server() }),
	kindOf("ServerUpdate", ServerUpdate.Validate, func(t *testing.T, in ServerUpdate) { s := ServerCreate{}.Server(); in.Apply(&s) }),
	kindOf("WorkspaceCreate", WorkspaceCreate.Validate, func(t *testing.T, in WorkspaceCreate) {
		w := in.Workspace()
		if errs := w.Validate(); len(errs) == 0 {
			provisionable(t, w)
		}
	}),
	kindOf("WorkspaceUpdate", WorkspaceUpdate.Validate, func(t *testing.T, in WorkspaceUpdate) {
		w := WorkspaceCreate{Image: Some("img")}.Workspace()
		in.Apply(&w)
		if errs := w.Validate(); len(errs) == 0 {
			provisionable(t, w)
		}
	}),
	kindOf("GroupCreate", GroupCreate.Validate, func(t *testing.T, in GroupCreate) { groupProvisionable(t, in.Group()) }),
	kindOf("GroupUpdate", GroupUpdate.Validate, func(t *testing.T, in GroupUpdate) {
		g := GroupCreate{}.Group()
		in.Apply(&g)
		groupProvisionable(t, g)
	}),
	kindOf("UserCreate", UserCreate.Validate, func(t *testing.T, in UserCreate) {
		u := in.User()
		if len(containerconfig.CheckAttributes(u.Attributes)) > 0 {
			t.Fatalf("attributes %v accepted", u.Attributes)
		}
	}),
	kindOf("UserUpdate", UserUpdate.Validate, func(t *testing.T, in UserUpdate) { u := UserCreate{}.User(); in.Apply(&u) }),
	kindOf("WebFilterPolicyCreate", WebFilterPolicyCreate.Validate, func(t *testing.T, in WebFilterPolicyCreate) { _ = in.WebFilterPolicy() }),
	kindOf("WebFilterPolicyUpdate", WebFilterPolicyUpdate.Validate, func(t *testing.T, in WebFilterPolicyUpdate) {
		p := WebFilterPolicyCreate{}.WebFilterPolicy()
		in.Apply(&p)
	}),
	kindOf("StagingConfigCreate", StagingConfigCreate.Validate, func(t *testing.T, in StagingConfigCreate) { _ = in.StagingConfig() }),
	kindOf("StagingConfigUpdate", StagingConfigUpdate.Validate, func(t *testing.T, in StagingConfigUpdate) {
		sc := StagingConfigCreate{}.StagingConfig()
		in.Apply(&sc)
	}),
	kindOf("APIKeyCreate", func(in APIKeyCreate) FieldErrors { return in.Validate(time.Unix(1e9, 0)) },
		func(t *testing.T, in APIKeyCreate) { _ = in.APIKey() }),
	kindOf("SessionRequest", func(in SessionRequest) FieldErrors { return in.Validate("") },
		func(t *testing.T, in SessionRequest) {
			if id := in.RequestIDOf(""); len(id) > RequestIDMaxLength {
				t.Fatalf("request_id of %d bytes accepted", len(id))
			}
		}),
}

// FuzzDecodeBody feeds one body to one body type's decoder and rules.
func FuzzDecodeBody(f *testing.F) {
	seeds := []string{
		``, ` `, `null`, `[]`, `"x"`, `{}`, `{} {}`, `{"name":`, `{"nope":1}`, `{"name":1}`, `{"name":null}`,
		`{"name":"desk","image":"kasmweb/desktop:1.16","cores":2,"memory_mb":2048,"include_labels":["gpu"],
			"home_directory":"/home/kasm-user","persistent_profile_path":"/profiles/{username}",
			"volume_mappings":{"/srv/{username}":{"bind":"/home/kasm-user/shared","mode":"rw","uid":1000,"gid":1000}},
			"docker_exec_config":{"assign":{"cmd":"bash -c 'echo {username}'","user":"root"},"first_launch":{"cmd":["/bin/true"]}},
			"run_config":{"hostname":"desk","environment":{"A":"1"},"shm_size":"512m","labels":{"team":"blue"}},
			"assign_hook":{"path":"/.greenroom/assign","timeout":"2s"},"port":6901,"readiness_path":"/healthz",
			"web_filter_policy":"strict","server_pool":null}`,
		`{"name":"g","priority":1,"allow_audio":false,"run_config":{"cap_add":["NET_ADMIN"]},"volume_mapping":{},
			"session_time_limit":"8h","keepalive_expiration":null,"inject_ssh_keys":true}`,
		`{"name":"eu","allow_origin_domain":"desktops.example.com","upstream_auth_address":"config.internal:8080","load_balancing":"least_load","priority":2}`,
		`{"name":"eu","upstream_auth_address":"https://config.example.com/base"}`,
		`{"name":"eu","upstream_auth_address":"[::1]:8080"}`,
		`{"name":"eu","upstream_auth_address":"fe80::1"}`,
		`{"name":"a1","zone":"eu","docker_endpoint":"tcp://10.0.0.5:2375","cores":8,"memory_mb":16384,"labels":["gpu"]}`,
		`{"username":"alice","groups":["staff"],"ssh_public_keys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@x"],"attributes":{"team":"blue"},"password":"correct horse"}`,
		`{"zone":"eu","workspace":"desk","desired_sessions":3,"expiration_hours":0.5,"allow_gamepad":false}`,
		`{"name":"ci","scopes":["sessions"],"expires_at":"2030-01-31T12:00:00Z"}`,
		`{"user":"alice","workspace":"desk","zone":"eu","request_id":"r-1"}`,
		`{"name":"p","default_allow":false,"allowed_domains":["example.com","*.example.org"]}`,
		`{"memory_mb":99999999999}`, `{"cores":1e400}`, `{"priority":1.5}`, `{"labels":[1]}`, `{"run_config":[]}`,
		`{"image":"x\u0000y"}`, `{"run_config":{"environment":{"A":"\ud800"}}}`, `{"session_time_limit":"-1h"}`,
	}
	for i := range bodyKinds {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		bodyKinds[int(kind)%len(bodyKinds)].check(t, body)
	})
}
