package containerconfig

import (
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, raw string) RunConfig {
	t.Helper()
	rc, errs := ParseRunConfig([]byte(raw))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", raw, errs)
	}
	return rc
}

func TestEmptyRunConfigIsHardened(t *testing.T) {
	for _, raw := range []string{``, `null`, `{}`, `{"hostname":"desk"}`} {
		rc := mustParse(t, raw)
		add, drop := rc.Capabilities()
		if !slices.Equal(drop, []string{"ALL"}) || !slices.Equal(add, DefaultCapabilities) {
			t.Errorf("%s: cap_add %v cap_drop %v, want every capability dropped and %v added", raw, add, drop, DefaultCapabilities)
		}
		if opts := rc.SecurityOptions(); !slices.Equal(opts, []string{NoNewPrivileges}) {
			t.Errorf("%s: security options %v", raw, opts)
		}
		if rc.Pids() != PidsLimitDefault {
			t.Errorf("%s: pids limit %d", raw, rc.Pids())
		}
	}
	// The default set is Docker's without the risky three, sorted, and
	// each a capability Greenroom accepts.
	for _, c := range DefaultCapabilities {
		if checkCapability(c) != "" {
			t.Errorf("default capability %s is not one", c)
		}
	}
	for _, risky := range []string{"NET_RAW", "MKNOD", "SETFCAP", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"} {
		if slices.Contains(DefaultCapabilities, risky) {
			t.Errorf("%s is in the default set", risky)
		}
	}
	if !slices.IsSorted(DefaultCapabilities) {
		t.Error("DefaultCapabilities is not sorted")
	}
}

func TestRunConfigCapabilitiesChangeTheDefaultSet(t *testing.T) {
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(DefaultCapabilities), func(c string) bool { return slices.Contains(drop, c) })
	}
	with := func(add ...string) []string {
		out := append(slices.Clone(DefaultCapabilities), add...)
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		raw       string
		add, drop []string
	}{
		{`{"cap_add":["NET_ADMIN"]}`, with("NET_ADMIN"), []string{"ALL"}},
		{`{"cap_add":"CAP_NET_RAW"}`, with("NET_RAW"), []string{"ALL"}},
		{`{"cap_add":["CHOWN"]}`, DefaultCapabilities, []string{"ALL"}},
		{`{"cap_drop":["SETUID","CAP_SETGID"]}`, without("SETUID", "SETGID"), []string{"ALL"}},
		{`{"cap_drop":["NET_RAW"]}`, DefaultCapabilities, []string{"ALL"}},
		{`{"cap_drop":"ALL"}`, []string{}, []string{"ALL"}},
		{`{"cap_drop":["ALL"],"cap_add":["NET_BIND_SERVICE"]}`, []string{"NET_BIND_SERVICE"}, []string{"ALL"}},
		{`{"cap_add":["SYS_ADMIN"],"cap_drop":["SYS_ADMIN"]}`, with("SYS_ADMIN"), []string{"ALL"}},
		{`{"cap_add":["ALL"]}`, []string{"ALL"}, []string{}},
		{`{"cap_add":["ALL"],"cap_drop":["NET_RAW","CAP_MKNOD","ALL"]}`, []string{"ALL"}, []string{"MKNOD", "NET_RAW"}},
	} {
		add, drop := mustParse(t, tc.raw).Capabilities()
		if !slices.Equal(add, tc.add) || !slices.Equal(drop, tc.drop) {
			t.Errorf("%s: cap_add %v cap_drop %v, want %v and %v", tc.raw, add, drop, tc.add, tc.drop)
		}
	}
}

func TestRunConfigSecurityOptAndPidsLimit(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		opts []string
		pids int64
	}{
		{`{"security_opt":["no-new-privileges=false"]}`, []string{"no-new-privileges=false"}, PidsLimitDefault},
		{`{"security_opt":"no-new-privileges:false"}`, []string{"no-new-privileges:false"}, PidsLimitDefault},
		{`{"security_opt":["no-new-privileges"]}`, []string{"no-new-privileges"}, PidsLimitDefault},
		{`{"security_opt":["apparmor=docker-default","label=disable"]}`, []string{NoNewPrivileges, "apparmor=docker-default", "label=disable"}, PidsLimitDefault},
		{`{"security_opt":["seccomp=unconfined","label=type:container_t"],"pids_limit":4096}`,
			[]string{NoNewPrivileges, "seccomp=unconfined", "label=type:container_t"}, 4096},
		{`{"security_opt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]}`,
			[]string{NoNewPrivileges, `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}, PidsLimitDefault},
		{`{"security_opt":[],"pids_limit":-1}`, []string{NoNewPrivileges}, -1},
		{`{"pids_limit":1}`, []string{NoNewPrivileges}, 1},
	} {
		rc := mustParse(t, tc.raw)
		if got := rc.SecurityOptions(); !slices.Equal(got, tc.opts) {
			t.Errorf("%s: security options %v, want %v", tc.raw, got, tc.opts)
		}
		if rc.Pids() != tc.pids {
			t.Errorf("%s: pids limit %d, want %d", tc.raw, rc.Pids(), tc.pids)
		}
	}
	for in, want := range map[string]string{
		`{"security_opt":["privileged"]}`:                          "security_opt[0]",
		`{"security_opt":["no-new-privileges=maybe"]}`:             "security_opt[0]",
		`{"security_opt":["label=disable","seccomp=/etc/p.json"]}`: "security_opt[1]",
		`{"security_opt":["seccomp={not json"]}`:                   "security_opt[0]",
		`{"security_opt":["apparmor="]}`:                           "security_opt[0]",
		`{"security_opt":["apparmor=a b"]}`:                        "security_opt[0]",
		`{"security_opt":["label=nested"]}`:                        "security_opt[0]",
		`{"security_opt":["systempaths=unconfined"]}`:              "security_opt[0]",
		`{"security_opt":["writable-cgroups=true"]}`:               "security_opt[0]",
		`{"security_opt":{"a":"b"}}`:                               "security_opt",
		`{"pids_limit":0}`:                                         "pids_limit",
		`{"pids_limit":-2}`:                                        "pids_limit",
		`{"pids_limit":1.5}`:                                       "pids_limit",
		`{"pids_limit":"1024"}`:                                    "pids_limit",
		`{"pids_limit":null}`:                                      "pids_limit",
	} {
		_, errs := ParseRunConfig([]byte(in))
		if len(errs) == 0 || errs[0].Field != want {
			t.Errorf("%s: errors %v, want first on %q", in, errs, want)
		}
	}
	_, errs := ParseRunConfig([]byte(`{"sysctls":{}}`))
	if len(errs) != 1 || !strings.Contains(errs[0].Detail, "pids_limit, security_opt") {
		t.Errorf("an unknown key does not list the new ones: %v", errs)
	}
}

// TestGroupRunConfigOverridesHardeningPerKey: security_opt, pids_limit,
// cap_add and cap_drop are merged as every key that is not an object: the
// group's replaces the workspace's, and what neither sets stays the
// default.
func TestGroupRunConfigOverridesHardeningPerKey(t *testing.T) {
	for _, tc := range []struct {
		name, workspace, group string
		add, drop, opts        []string
		pids                   int64
	}{
		{"neither", `{}`, `{}`, DefaultCapabilities, []string{"ALL"}, []string{NoNewPrivileges}, PidsLimitDefault},
		{"workspace only", `{"security_opt":["no-new-privileges=false"],"pids_limit":100,"cap_drop":["ALL"]}`, `{"hostname":"g"}`,
			[]string{}, []string{"ALL"}, []string{"no-new-privileges=false"}, 100},
		{"group only", `{"hostname":"w"}`, `{"pids_limit":-1,"cap_add":["ALL"]}`,
			[]string{"ALL"}, []string{}, []string{NoNewPrivileges}, -1},
		{"group replaces", `{"security_opt":["no-new-privileges=false"],"pids_limit":100,"cap_add":["SYS_ADMIN"]}`,
			`{"security_opt":["apparmor=unconfined"],"pids_limit":300,"cap_add":["NET_ADMIN"]}`,
			[]string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_ADMIN", "NET_BIND_SERVICE", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"},
			[]string{"ALL"}, []string{NoNewPrivileges, "apparmor=unconfined"}, 300},
		{"workspace adds, group drops", `{"cap_add":["NET_RAW"]}`, `{"cap_drop":["KILL"]}`,
			[]string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "NET_BIND_SERVICE", "NET_RAW", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"},
			[]string{"ALL"}, []string{NoNewPrivileges}, PidsLimitDefault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			merged, errs := MergeRunConfig([]byte(tc.workspace), []byte(tc.group))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			rc := mustParse(t, string(merged))
			add, drop := rc.Capabilities()
			if !slices.Equal(add, tc.add) || !slices.Equal(drop, tc.drop) {
				t.Errorf("merged %s: cap_add %v cap_drop %v, want %v and %v", merged, add, drop, tc.add, tc.drop)
			}
			if got := rc.SecurityOptions(); !slices.Equal(got, tc.opts) {
				t.Errorf("merged %s: security options %v, want %v", merged, got, tc.opts)
			}
			if rc.Pids() != tc.pids {
				t.Errorf("merged %s: pids %d, want %d", merged, rc.Pids(), tc.pids)
			}
		})
	}
}

func TestReadinessPathIsAnHTTPPath(t *testing.T) {
	for _, ok := range []string{"", "/", "/healthz", "/api/v1/ready?full=1", "/a%20b", "/a//b", "/~user/x-y_z.json", "/é"} {
		if problem := CheckReadinessPath(ok); problem != "" {
			t.Errorf("%q refused: %s", ok, problem)
		}
	}
	for _, bad := range []string{"healthz", "@evil.example/x", "//evil.example/x", "http://evil.example/x", "https:/x",
		"/a b", "/a\tb", "/a\nb", "/a\x00", "/a\x7f", "/a\u2028b", "/#frag", "/a%zz", " /x", "/x\u00a0",
		"/" + strings.Repeat("a", ReadinessPathMaxLength), "/\xff"} {
		if problem := CheckReadinessPath(bad); problem == "" {
			t.Errorf("%q accepted", bad)
		}
	}
}
