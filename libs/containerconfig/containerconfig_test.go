package containerconfig

import (
	"slices"
	"strings"
	"testing"
)

func fields(errs Errors) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

func TestRunConfigAppliesTheDocumentedOptions(t *testing.T) {
	rc, errs := ParseRunConfig([]byte(`{"hostname":"desk-1","environment":{"A":"x","N":3,"B":true},
		"shm_size":"512m","cap_add":["NET_ADMIN"],"cap_drop":"NET_RAW","devices":["/dev/fuse","/dev/sda:/dev/xvda:r"],
		"dns":["10.0.0.53"],"extra_hosts":{"db.local":"10.0.0.9"},"labels":{"team":"blue"},
		"user":"1000:1000","working_dir":"/work"}`))
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if rc.Hostname != "desk-1" || rc.Environment["N"] != "3" || rc.Environment["B"] != "true" || rc.ShmSize != 512<<20 ||
		!slices.Equal(rc.CapAdd, []string{"NET_ADMIN"}) || !slices.Equal(rc.CapDrop, []string{"NET_RAW"}) ||
		len(rc.Devices) != 2 || rc.Devices[1] != (Device{"/dev/sda", "/dev/xvda", "r"}) || rc.Devices[0].CgroupPermissions != "rwm" ||
		!slices.Equal(rc.DNS, []string{"10.0.0.53"}) || !slices.Equal(rc.ExtraHosts, []string{"db.local:10.0.0.9"}) ||
		rc.Labels["team"] != "blue" || rc.User != "1000:1000" || rc.WorkingDir != "/work" {
		t.Fatalf("parsed %+v", rc)
	}
}

func TestRunConfigUnknownOrBadKeyIsNamed(t *testing.T) {
	cases := map[string]string{
		`{"privileged":true}`:                              "privileged",
		`{"environment":{"A B":"x"}}`:                      "environment.A B",
		`{"environment":{"A":{"x":1}}}`:                    "environment.A",
		`{"shm_size":"lots"}`:                              "shm_size",
		`{"dns":["not-an-ip"]}`:                            "dns[0]",
		`{"devices":["dev/fuse"]}`:                         "devices[0]",
		`{"extra_hosts":["nocolon"]}`:                      "extra_hosts[0]",
		`{"labels":{"greenroom.session":"x"}}`:             "labels.greenroom.session",
		`{"working_dir":"relative"}`:                       "working_dir",
		`{"cap_add":["FOO"]}`:                              "cap_add[0]",
		`{"environment":{"GREENROOM_USER":"x"}}`:           "environment.GREENROOM_USER",
		`{"environment":{"GREENROOM_USER_TEAM":"x"}}`:      "environment.GREENROOM_USER_TEAM",
		`{"environment":{"GREENROOM_ALLOW_AUDIO":"true"}}`: "environment.GREENROOM_ALLOW_AUDIO",
		`{"environment":{"GREENROOM_WEB_FILTER":"{}"}}`:    "environment.GREENROOM_WEB_FILTER",
		`{"hostname":"bad_host!"}`:                         "hostname",
		`[1,2]`:                                            "",
	}
	for in, want := range cases {
		_, errs := ParseRunConfig([]byte(in))
		if len(errs) == 0 || errs[0].Field != want {
			t.Errorf("%s: errors %v, want first on %q", in, errs, want)
		}
	}
	if _, errs := ParseRunConfig([]byte(`{}`)); len(errs) != 0 {
		t.Errorf("{}: %v", errs)
	}
}

func TestGroupRunConfigWinsPerKey(t *testing.T) {
	merged, errs := MergeRunConfig([]byte(`{"hostname":"ws","environment":{"A":"ws","B":"ws"},"user":"1000"}`),
		[]byte(`{"hostname":"group","environment":{"B":"group","C":"group"}}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rc, errs := ParseRunConfig(merged)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if rc.Hostname != "group" || rc.User != "1000" || rc.Environment["A"] != "ws" || rc.Environment["B"] != "group" || rc.Environment["C"] != "group" {
		t.Fatalf("merged %s", merged)
	}
}

func TestVolumeMappingsAreAbsoluteAndCleanAfterSubstitution(t *testing.T) {
	ms, errs := ParseVolumeMappings([]byte(`{"/srv/home/{username}":{"bind":"/home/kasm-user/data","mode":"rw","uid":1000,"gid":1000},
		"/srv/shared":{"bind":"/shared","mode":"ro"}}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(ms) != 2 || !ms[0].UsesUserToken() || !ms[0].Owned() || ms[1].UsesUserToken() || !ms[1].ReadOnly {
		t.Fatalf("parsed %+v", ms)
	}
	m, err := ms[0].Render(Tokens{Username: "alice"})
	if err != nil || m.Host != "/srv/home/alice" {
		t.Fatalf("rendered %+v, %v", m, err)
	}
	bad := map[string]string{
		`{"relative/{username}":{"bind":"/x"}}`:    "relative/{username}",
		`{"/srv/../etc":{"bind":"/x"}}`:            "/srv/../etc",
		`{"/srv/{username}/":{"bind":"/x"}}`:       "/srv/{username}/",
		`{"/srv/a":{"bind":"x"}}`:                  "/srv/a.bind",
		`{"/srv/a":{"bind":"/x","mode":"rwx"}}`:    "/srv/a.mode",
		`{"/srv/a":{"mode":"rw"}}`:                 "/srv/a.bind",
		`{"/srv/a":{"bind":"/x","uid":1}}`:         "/srv/a",
		`{"/srv/a":{"bind":"/x","required":true}}`: "/srv/a.required",
	}
	for in, want := range bad {
		_, errs := ParseVolumeMappings([]byte(in))
		if !slices.Contains(fields(errs), want) {
			t.Errorf("%s: errors %v, want one on %q", in, errs, want)
		}
	}
}

func TestProfilePathTokens(t *testing.T) {
	p, err := ProfilePath("/profiles/{workspace}/{username}-{user_id}", Tokens{Username: "bob", UserID: "u1", Workspace: "demo"})
	if err != nil || p != "/profiles/demo/bob-u1" {
		t.Fatalf("%q %v", p, err)
	}
	if problem := CheckTemplatePath("/profiles/{username}/..", false); problem == "" {
		t.Fatal("a path with .. must be refused")
	}
	if problem := CheckProfilePath("/profiles/shared"); problem == "" {
		t.Fatal("a profile path every user would share must be refused")
	}
	if problem := CheckProfilePath("/profiles/{user_id}"); problem != "" {
		t.Fatal(problem)
	}
}

func TestAttributesBecomeUserVariables(t *testing.T) {
	if errs := CheckAttributes(map[string]string{"team": "a", "TEAM": "b"}); len(errs) != 1 {
		t.Fatalf("case-colliding keys: %v", errs)
	}
	if errs := CheckAttributes(map[string]string{"1x": "a", "a-b": "b", "id": "0"}); len(errs) != 3 {
		t.Fatalf("bad keys (and id, which would be GREENROOM_USER_ID): %v", errs)
	}
	env := UserEnv(map[string]string{"cost_center": "42"})
	if env["GREENROOM_USER_COST_CENTER"] != "42" {
		t.Fatalf("env %v", env)
	}
}

func TestSSHKeysAndDomainsAreChecked(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7o5Xc9rU0m8FJ0mxVjvtnPo0d1w3cZ9e3fQmYyGdw alice@laptop"
	if p := CheckSSHPublicKey(key); p != "" {
		t.Fatalf("valid key refused: %s", p)
	}
	if p := CheckSSHPublicKey("ssh-rsa notbase64"); p == "" {
		t.Fatal("invalid key accepted")
	}
	if got := string(AuthorizedKeys([]string{key, key})); strings.Count(got, "\n") != 2 {
		t.Fatalf("authorized_keys %q", got)
	}
	for _, d := range []string{"example.com", "*.example.com", "localhost"} {
		if p := CheckDomain(d); p != "" {
			t.Errorf("%s: %s", d, p)
		}
	}
	for _, d := range []string{"Example.com", "exa mple.com", "*.", "http://x.com"} {
		if CheckDomain(d) == "" {
			t.Errorf("%s accepted", d)
		}
	}
	if got := (WebFilter{Name: "kids", DefaultAllow: false}).JSON(); got != `{"name":"kids","default_allow":false,"allowed_domains":[],"denied_domains":[]}` {
		t.Fatalf("json %s", got)
	}
}

func TestExecConfigIsCheckedAsItIsRun(t *testing.T) {
	cfg, errs := ParseExecConfig([]byte(`{"assign": {"cmd": "/bin/x --user '{username}'", "environment": {"N": 1}},
		"first_launch": {"cmd": ["a", "{session_id}"], "user": "0"}}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !slices.Equal(cfg.Assign.Cmd, []string{"/bin/x", "--user", "{username}"}) || cfg.Assign.Environment["N"] != "1" || cfg.FirstLaunch.User != "0" {
		t.Fatalf("parsed %+v %+v", cfg.Assign, cfg.FirstLaunch)
	}
	r := cfg.Assign.Render(Tokens{Username: "a b"}, map[string]string{"GREENROOM_USER": "a b"})
	if !slices.Equal(r.Cmd, []string{"/bin/x", "--user", "a b"}) || r.Environment["GREENROOM_USER"] != "a b" {
		t.Fatalf("rendered %+v", r)
	}
	for in, want := range map[string]string{
		`{"go": {"cmd": "x"}}`:                                  "go",
		`{"assign": {}}`:                                        "assign.cmd",
		`{"assign": {"cmd": "echo 'open"}}`:                     "assign.cmd",
		`{"assign": {"cmd": []}}`:                               "assign.cmd",
		`{"assign": {"cmd": "x", "shell": "sh"}}`:               "assign.shell",
		`{"assign": {"cmd": "x", "environment": {"A=B": "1"}}}`: "assign.environment.A=B",
		`{"first_launch": {"cmd": "x", "privileged": "yes"}}`:   "first_launch.privileged",
	} {
		if _, errs := ParseExecConfig([]byte(in)); !slices.Contains(fields(errs), want) {
			t.Errorf("%s: errors %v, want one on %q", in, errs, want)
		}
	}
}

func TestAssignHookIsChecked(t *testing.T) {
	h, ok, errs := ParseAssignHook([]byte(`{"path": "/.greenroom/assign"}`))
	if !ok || len(errs) > 0 || h.Path != "/.greenroom/assign" || h.Timeout != AssignHookTimeoutDefault {
		t.Fatalf("%+v %v %v", h, ok, errs)
	}
	if _, ok, _ := ParseAssignHook([]byte(`null`)); ok {
		t.Fatal("null is no hook")
	}
	for in, want := range map[string]string{
		`{"timeout": "5s"}`:                    "path",
		`{"path": "relative"}`:                 "path",
		`{"path": "/a/../b"}`:                  "path",
		`{"path": "/a?x=1"}`:                   "path",
		`{"path": "/a", "timeout": "forever"}`: "timeout",
		`{"path": "/a", "timeout": "2m"}`:      "timeout",
		`{"path": "/a", "timeout": "-1s"}`:     "timeout",
		`{"path": "/a", "retries": 3}`:         "retries",
	} {
		if _, _, errs := ParseAssignHook([]byte(in)); !slices.Contains(fields(errs), want) {
			t.Errorf("%s: errors %v, want one on %q", in, errs, want)
		}
	}
}
