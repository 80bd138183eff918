package containerconfig

// Fuzz tests of the parsers of a workspace's and a group's settings
// (issue 15, "bad input"): run_config, volume mappings, docker_exec_config,
// assign_hook and the persistent profile path. The config service
// validates with them and the provisioner applies them, so each target
// also checks that what is accepted stays accepted where the provisioner
// uses it: merged with a group's, rendered for a real user, encoded again.
// `make fuzz` runs each for FUZZTIME; the seeds (and any crasher kept
// under testdata/fuzz) run with the other tests.

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// fuzzUsername is what a real user's tokens look like: a name as the config
// service allows one (domain.NamePattern), a UUID.
var fuzzUsername = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

func fuzzTokens(username string) Tokens {
	return Tokens{Username: username, UserID: "0192f3a4-5b6c-7d8e-9f01-23456789abcf",
		Workspace: "desk", SessionID: "0192f3a4-5b6c-7d8e-9f01-23456789abcd"}
}

var runConfigSeeds = []string{
	``, `null`, `{}`, `[]`, `"x"`, `{"privileged":true}`,
	`{"hostname":"desk-1","environment":{"A":"x","N":3,"B":true,"Z":null},
		"shm_size":"512m","cap_add":["NET_ADMIN"],"cap_drop":"NET_RAW","devices":["/dev/fuse","/dev/sda:/dev/xvda:r"],
		"dns":["10.0.0.53","::1"],"extra_hosts":{"db.local":"10.0.0.9","gw":"host-gateway"},"labels":{"team":"blue","n":1.5},
		"user":"1000:1000","working_dir":"/work"}`,
	`{"extra_hosts":["db.local:10.0.0.9","v6:::1"],"cap_add":null,"security_opt":["no-new-privileges:false","seccomp=unconfined"],"pids_limit":512}`,
	`{"pids_limit":-1}`, `{"pids_limit":0}`, `{"shm_size":0}`, `{"shm_size":"1e3g"}`, `{"shm_size":9223372036854775807}`,
	`{"environment":{"GREENROOM_USER":"x"}}`, `{"labels":{"greenroom.session":"x"}}`, `{"working_dir":"/"}`,
	`{"devices":["/dev/a:/dev/b:rwm:x"]}`, `{"devices":["/dev/a::"]}`, `{"hostname":"` + strings.Repeat("a.", 130) + `a"}`,
	`{"environment":{"A":{"x":1}},"labels":[1]}`, `{"extra_hosts":{"h":"not-ip"}}`,
}

// encodeRunConfig writes rc as the run_config that parses to it: each
// field under its snake_case key, devices as Docker writes them.
func encodeRunConfig(t *testing.T, rc RunConfig) []byte {
	t.Helper()
	out := map[string]any{}
	v := reflect.ValueOf(rc)
	for i := range v.NumField() {
		f, name := v.Field(i), snake(v.Type().Field(i).Name)
		switch {
		case f.IsZero():
			continue
		case name == "devices":
			var ds []string
			for _, d := range rc.Devices {
				ds = append(ds, d.PathOnHost+":"+d.PathInContainer+":"+d.CgroupPermissions)
			}
			out[name] = ds
		default:
			out[name] = f.Interface()
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("encoding %+v: %v", rc, err)
	}
	return b
}

// snake is a Go field name as a run_config key: ShmSize is shm_size, DNS
// is dns.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// FuzzParseRunConfig: ParseRunConfig never panics, names the field of
// every problem below the setting (or none for the value as a whole), and
// a run_config it accepts encodes to one that parses the same; merged with
// nothing (a user whose group sets none) it is still accepted.
func FuzzParseRunConfig(f *testing.F) {
	for _, s := range runConfigSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rc, errs := ParseRunConfig(raw)
		if len(errs) > 0 {
			for _, e := range errs {
				if e.Detail == "" {
					t.Fatalf("a problem without a detail: %+v", errs)
				}
			}
			return
		}
		rc2, errs := ParseRunConfig(encodeRunConfig(t, rc))
		if len(errs) > 0 || !reflect.DeepEqual(rc, rc2) {
			t.Fatalf("round trip of %q: %v\n%+v\n%+v", raw, errs, rc, rc2)
		}
		merged, errs := MergeRunConfig(raw, nil)
		if len(errs) > 0 {
			t.Fatalf("MergeRunConfig(%q, nil): %v", raw, errs)
		}
		if rc3, errs := ParseRunConfig(merged); len(errs) > 0 || !reflect.DeepEqual(rc, rc3) {
			t.Fatalf("merged with nothing, %q became %q: %v", raw, merged, errs)
		}
	})
}

// FuzzMergeRunConfig: a workspace's and a group's run_config that the
// config service accepted one by one always merge into one the provisioner
// accepts, the group's value winning per key (per entry for environment
// and labels).
func FuzzMergeRunConfig(f *testing.F) {
	for i, s := range runConfigSeeds {
		f.Add([]byte(s), []byte(runConfigSeeds[(i+7)%len(runConfigSeeds)]))
	}
	f.Add([]byte(`{"environment":{"A":"1","B":"2"},"extra_hosts":["a:10.0.0.1"]}`), []byte(`{"environment":{"B":"3"},"extra_hosts":{"b":"10.0.0.2"}}`))
	f.Fuzz(func(t *testing.T, ws, group []byte) {
		wrc, werrs := ParseRunConfig(ws)
		grc, gerrs := ParseRunConfig(group)
		merged, errs := MergeRunConfig(ws, group)
		if len(werrs) > 0 || len(gerrs) > 0 {
			return
		}
		if len(errs) > 0 {
			t.Fatalf("MergeRunConfig(%q, %q): %v", ws, group, errs)
		}
		rc, errs := ParseRunConfig(merged)
		if len(errs) > 0 {
			t.Fatalf("two valid run_configs %q and %q merge into an invalid one %q: %v", ws, group, merged, errs)
		}
		for k, v := range grc.Environment {
			if rc.Environment[k] != v {
				t.Fatalf("environment %s: the group's %q did not win (%q)", k, v, rc.Environment[k])
			}
		}
		for k, v := range grc.Labels {
			if rc.Labels[k] != v {
				t.Fatalf("label %s: the group's %q did not win (%q)", k, v, rc.Labels[k])
			}
		}
		if grc.Hostname != "" && rc.Hostname != grc.Hostname || grc.Hostname == "" && rc.Hostname != wrc.Hostname {
			t.Fatalf("hostname: workspace %q, group %q, merged %q", wrc.Hostname, grc.Hostname, rc.Hostname)
		}
	})
}

func encodeVolumeMappings(t *testing.T, ms []VolumeMapping) []byte {
	t.Helper()
	out := map[string]any{}
	for _, m := range ms {
		e := map[string]any{"bind": m.Bind, "mode": "rw"}
		if m.ReadOnly {
			e["mode"] = "ro"
		}
		if m.UID != nil {
			e["uid"] = *m.UID
		}
		if m.GID != nil {
			e["gid"] = *m.GID
		}
		out[m.Host] = e
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseVolumeMappings: ParseVolumeMappings never panics; mappings it
// accepts encode to ones that parse the same, and render (as the
// provisioner does) for any user the config service allows.
func FuzzParseVolumeMappings(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`,
		`{"/srv/homes/{username}":{"bind":"/home/kasm-user/shared","mode":"rw","uid":1000,"gid":1000}}`,
		`{"/srv/data":{"bind":"/data","mode":"ro"},"/srv/{user_id}/{workspace}":{"bind":"/u/{session_id}","mode":"rw"}}`,
		`{"relative":{"bind":"/x","mode":"rw"}}`, `{"/a/../b":{"bind":"/x"}}`, `{"/a":{"bind":"/x:y","mode":"rx"}}`,
		`{"/a":{"bind":"/x","uid":1000}}`, `{"/a":{"bind":"/x","uid":-1,"gid":1.5}}`, `{"/a":null}`, `{"/a":{"mode":"rw"}}`,
		`{"/":{"bind":"/"}}`, `{"/srv/{username}{user_id}":{"bind":"/{username}"}}`, `{"/a":{"bind":"/b","extra":1}}`,
	} {
		f.Add([]byte(s), "alice")
	}
	f.Add([]byte(`{"/srv/{username}":{"bind":"/home/{username}"}}`), "a..b")
	f.Add([]byte(`{"/srv/x{username}":{"bind":"/h"}}`), "0_.-")
	f.Fuzz(func(t *testing.T, raw []byte, username string) {
		ms, errs := ParseVolumeMappings(raw)
		if len(errs) > 0 {
			return
		}
		ms2, errs := ParseVolumeMappings(encodeVolumeMappings(t, ms))
		if len(errs) > 0 || !reflect.DeepEqual(ms, ms2) {
			t.Fatalf("round trip of %q: %v\n%+v\n%+v", raw, errs, ms, ms2)
		}
		if !fuzzUsername.MatchString(username) {
			return
		}
		for _, m := range ms {
			if _, err := m.Render(fuzzTokens(username)); err != nil {
				t.Fatalf("mapping %+v accepted, yet the provisioner refuses it for user %q: %v", m, username, err)
			}
		}
	})
}

// encodeExecCommand writes c as the docker_exec_config command that
// parses to it (cmd as an argv).
func encodeExecCommand(c *ExecCommand) any {
	if c == nil {
		return nil
	}
	out := map[string]any{"cmd": c.Cmd, "user": c.User, "privileged": c.Privileged, "workdir": c.Workdir}
	if c.Environment != nil {
		out["environment"] = c.Environment
	}
	return out
}

// FuzzParseExecConfig: ParseExecConfig never panics; a config it accepts
// encodes to one that parses the same, and renders for any user with
// every argument kept one argument.
func FuzzParseExecConfig(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"assign":null}`,
		`{"assign":{"cmd":"bash -c 'echo {username} > /tmp/x'","user":"root","privileged":false,"environment":{"A":"{user_id}","N":1},"workdir":"/home/{username}"}}`,
		`{"first_launch":{"cmd":["/bin/sh","-c","echo \"$A\""]}}`,
		`{"assign":{"cmd":"echo 'unterminated"}}`, `{"assign":{"cmd":""}}`, `{"assign":{"cmd":[]}}`, `{"assign":{"cmd":[""]}}`,
		`{"assign":{"cmd":"x","extra":1}}`, `{"go":{"cmd":"x"}}`, `{"assign":{"user":"root"}}`, `{"assign":{"cmd":"$(rm -rf /) ${X} \\\n y"}}`,
		`{"assign":{"cmd":"x","environment":{"A B":"x"}}}`, `{"assign":{"cmd":"x","privileged":"yes"}}`,
	} {
		f.Add([]byte(s), "alice")
	}
	f.Fuzz(func(t *testing.T, raw []byte, username string) {
		cfg, errs := ParseExecConfig(raw)
		if len(errs) > 0 {
			return
		}
		enc := map[string]any{}
		if cfg.Assign != nil {
			enc["assign"] = encodeExecCommand(cfg.Assign)
		}
		if cfg.FirstLaunch != nil {
			enc["first_launch"] = encodeExecCommand(cfg.FirstLaunch)
		}
		b, err := json.Marshal(enc)
		if err != nil {
			t.Fatal(err)
		}
		cfg2, errs := ParseExecConfig(b)
		if len(errs) > 0 || !reflect.DeepEqual(cfg, cfg2) {
			t.Fatalf("round trip of %q via %s: %v\n%+v\n%+v", raw, b, errs, cfg, cfg2)
		}
		for _, c := range []*ExecCommand{cfg.Assign, cfg.FirstLaunch} {
			if c == nil {
				continue
			}
			if len(c.Cmd) == 0 || c.Cmd[0] == "" {
				t.Fatalf("accepted an empty command: %q", raw)
			}
			r := c.Render(fuzzTokens(username), map[string]string{"GREENROOM_USER": username})
			if len(r.Cmd) != len(c.Cmd) || r.Environment["GREENROOM_USER"] != username {
				t.Fatalf("rendering %q for %q: %+v", c.Cmd, username, r)
			}
		}
	})
}

// FuzzParseAssignHook: ParseAssignHook never panics; a hook it accepts has
// a path and a timeout in bounds, encodes to one that parses the same, and
// makes a valid URL path.
func FuzzParseAssignHook(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"path":"/.greenroom/assign"}`, `{"path":"/.greenroom/assign","timeout":"250ms"}`,
		`{"path":"/a?b"}`, `{"path":"a"}`, `{"path":"/a","timeout":"0s"}`, `{"path":"/a","timeout":"2m"}`,
		`{"path":"/a","timeout":5}`, `{"timeout":"1s"}`, `{"path":"/a","x":1}`, `{"path":"/a#b"}`, `{"path":"/%2e%2e/x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, ok, errs := ParseAssignHook(raw)
		if !ok {
			return
		}
		if len(errs) > 0 {
			t.Fatalf("ok with problems: %v", errs)
		}
		if h.Timeout < 1e6 || h.Timeout > AssignHookTimeoutMax || !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, "?#\x00") {
			t.Fatalf("accepted %+v from %q", h, raw)
		}
		b, _ := json.Marshal(map[string]string{"path": h.Path, "timeout": h.Timeout.String()})
		h2, ok2, errs := ParseAssignHook(b)
		if !ok2 || h2 != h {
			t.Fatalf("round trip of %q via %s: %v %+v", raw, b, errs, h2)
		}
		// The provisioner POSTs to ContainerURL(host, port, path).
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080"+h.Path, nil)
		if err != nil {
			t.Fatalf("hook path %q accepted, yet the provisioner cannot make a request of it: %v", h.Path, err)
		}
		if req.URL.EscapedPath() != h.Path && req.URL.Path != h.Path || req.URL.RawQuery != "" || req.URL.Fragment != "" {
			t.Fatalf("hook path %q is sent as %q", h.Path, req.URL.RequestURI())
		}
	})
}

// FuzzProfilePath: a persistent_profile_path CheckProfilePath accepts is,
// for every user the config service allows, a path ProfilePath accepts
// (the provisioner's check), different for different users.
func FuzzProfilePath(f *testing.F) {
	for _, s := range []string{"/profiles/{username}", "/profiles/{user_id}/{workspace}", "/profiles", "profiles/{username}",
		"/p/{username}/../x", "/p/{username}:x", "/p/x{username}", "/{username}", "/p/{user_id}{username}/"} {
		f.Add(s, "alice", "bob")
	}
	f.Fuzz(func(t *testing.T, template, user1, user2 string) {
		if CheckProfilePath(template) != "" || !fuzzUsername.MatchString(user1) || !fuzzUsername.MatchString(user2) || user1 == user2 {
			return
		}
		t1, t2 := fuzzTokens(user1), fuzzTokens(user2)
		t2.UserID = "0192f3a4-5b6c-7d8e-9f01-23456789abd0"
		p1, err := ProfilePath(template, t1)
		if err != nil {
			t.Fatalf("%q accepted, refused for %q: %v", template, user1, err)
		}
		p2, err := ProfilePath(template, t2)
		if err != nil {
			t.Fatalf("%q accepted, refused for %q: %v", template, user2, err)
		}
		if p1 == p2 {
			t.Fatalf("%q gives users %q and %q the same profile %q", template, user1, user2, p1)
		}
	})
}

// FuzzCheckAttributes: attributes CheckAttributes accepts become as many
// distinct GREENROOM_USER_* variables, none of them one Greenroom sets
// for itself but the user's own.
func FuzzCheckAttributes(f *testing.F) {
	f.Add("team", "blue", "Team", "red")
	f.Add("id", "x", "a b", "y")
	f.Add("ok_1", "", "OK_1", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		attrs := map[string]string{k1: v1, k2: v2}
		if len(CheckAttributes(attrs)) > 0 {
			return
		}
		env := UserEnv(attrs)
		if len(env) != len(attrs) {
			t.Fatalf("attributes %v collide as variables %v", attrs, env)
		}
		for name := range env {
			if name == UserEnvPrefix+"ID" || !strings.HasPrefix(name, UserEnvPrefix) {
				t.Fatalf("attribute variable %q", name)
			}
		}
	})
}
