package service_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/moby/moby/api/types/container"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// defaultCapBnd is the bounding set of a container with
// containerconfig.DefaultCapabilities, as /proc/<pid>/status shows it:
// Docker's default (00000000a80425fb) without NET_RAW (bit 13), MKNOD
// (27) and SETFCAP (31).
const defaultCapBnd = "00000000200405fb"

// hardening is what docker inspect says of a container's hardening, the
// capability names without their CAP_ prefix (engines write it or not).
type hardening struct {
	capAdd, capDrop, securityOpt []string
	pidsLimit                    int64
}

func hardeningOf(t *testing.T, in container.InspectResponse) hardening {
	t.Helper()
	strip := func(list []string) []string {
		out := []string{}
		for _, c := range list {
			out = append(out, strings.TrimPrefix(c, "CAP_"))
		}
		slices.Sort(out)
		return out
	}
	h := hardening{capAdd: strip(in.HostConfig.CapAdd), capDrop: strip(in.HostConfig.CapDrop), securityOpt: in.HostConfig.SecurityOpt}
	if in.HostConfig.PidsLimit != nil {
		h.pidsLimit = *in.HostConfig.PidsLimit
	}
	return h
}

func (h hardening) equal(o hardening) bool {
	return slices.Equal(h.capAdd, o.capAdd) && slices.Equal(h.capDrop, o.capDrop) &&
		slices.Equal(h.securityOpt, o.securityOpt) && h.pidsLimit == o.pidsLimit
}

var defaultHardening = hardening{capAdd: containerconfig.DefaultCapabilities, capDrop: []string{"ALL"},
	securityOpt: []string{containerconfig.NoNewPrivileges}, pidsLimit: containerconfig.PidsLimitDefault}

// procStatus is the line of the container's first process's
// /proc/<pid>/status that starts with key, e.g. "NoNewPrivs:\t1".
func (e *env) procStatus(containerID, key string) string {
	e.t.Helper()
	status, code := e.inContainer(containerID, "file", "read", "/proc/1/status")
	if code != 0 {
		e.t.Fatalf("reading /proc/1/status: exit %d: %s", code, status)
	}
	for line := range strings.SplitSeq(status, "\n") {
		if strings.HasPrefix(line, key+":") {
			return strings.TrimSpace(strings.TrimPrefix(line, key+":"))
		}
	}
	e.t.Fatalf("/proc/1/status has no %s:\n%s", key, status)
	return ""
}

// TestContainersAreHardenedByDefault: a staged container and an on-demand
// one of a workspace whose run_config says nothing of it run with
// no-new-privileges, every capability dropped but the default set, and a
// pids limit — docker inspect and what the process inside sees — and the
// demo image still works in them: it is served, and its assign and
// first_launch execs, run as root as make up's demo runs them, succeed.
func TestContainersAreHardenedByDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s", execConfig: `{
		"assign": {"cmd": ["/demo-workspace", "assign"], "user": "0"},
		"first_launch": {"cmd": ["/demo-workspace", "file", "append", "/var/lib/greenroom-demo/first-launch", "{session_id}"], "user": "0"}}`})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
	list := e.containers(map[string]string{domain.LabelStagingConfig: cfg})
	if len(list) != 1 {
		t.Fatalf("%d staged containers", len(list))
	}
	check := func(what, id string) {
		t.Helper()
		in, err := e.inspect(id)
		if err != nil {
			t.Fatal(err)
		}
		if got := hardeningOf(t, in); !got.equal(defaultHardening) {
			t.Errorf("%s container: %+v, want %+v", what, got, defaultHardening)
		}
		if nnp := e.procStatus(id, "NoNewPrivs"); nnp != "1" {
			t.Errorf("%s container: NoNewPrivs %s, want 1", what, nnp)
		}
		if bnd := e.procStatus(id, "CapBnd"); bnd != defaultCapBnd {
			t.Errorf("%s container: capability bounding set %s, want %s", what, bnd, defaultCapBnd)
		}
	}
	check("staged", list[0].ID)

	claimed, rid := e.claimStaged(f, cfg)
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	if code, body := httpGet(t, claimed.UpstreamURL); code != 200 || !strings.Contains(body, "Assigned to "+f.user) {
		t.Errorf("the hardened staged container after its assign exec: %d\n%s", code, body)
	}
	if fl, _ := e.inContainer(claimed.ContainerID, "file", "read", "/var/lib/greenroom-demo/first-launch"); fl != claimed.ID+"\n" {
		t.Errorf("first_launch in the hardened staged container wrote %q", fl)
	}

	s, _ := e.onDemandReady(f, f.userID)
	check("on-demand", s.ContainerID)
	if fl, _ := e.inContainer(s.ContainerID, "file", "read", "/var/lib/greenroom-demo/first-launch"); fl != s.ID+"\n" {
		t.Errorf("first_launch in the hardened on-demand container wrote %q", fl)
	}
}

// TestRunConfigOverridesTheHardening: a workspace's run_config changes
// each default, for its staged containers as for its on-demand ones, and
// the user's effective group's wins per key over the workspace's.
func TestRunConfigOverridesTheHardening(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	e.exec(`UPDATE workspaces SET run_config = '{"environment": {"GREENROOM_DEMO_INIT_DELAY": "0s"},
			"security_opt": ["no-new-privileges=false"], "pids_limit": 100, "cap_add": ["NET_RAW"], "cap_drop": ["SETPCAP"]}'
		WHERE id = $1`, f.workspaceID)
	without := func(drop string, add ...string) []string {
		out := slices.DeleteFunc(slices.Clone(containerconfig.DefaultCapabilities), func(c string) bool { return c == drop })
		out = append(out, add...)
		slices.Sort(out)
		return out
	}
	wsHardening := hardening{capAdd: without("SETPCAP", "NET_RAW"), capDrop: []string{"ALL"},
		securityOpt: []string{"no-new-privileges=false"}, pidsLimit: 100}

	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
	list := e.containers(map[string]string{domain.LabelStagingConfig: cfg})
	if len(list) != 1 {
		t.Fatalf("%d staged containers", len(list))
	}
	in, err := e.inspect(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := hardeningOf(t, in); !got.equal(wsHardening) {
		t.Errorf("staged container: %+v, want the workspace's %+v", got, wsHardening)
	}
	if nnp := e.procStatus(list[0].ID, "NoNewPrivs"); nnp != "0" {
		t.Errorf("staged container: NoNewPrivs %s, want 0 (security_opt no-new-privileges=false)", nnp)
	}

	// The group wins per key: its pids_limit and cap_drop replace the
	// workspace's, the workspace's security_opt and cap_add stay.
	groupID := uuid.NewString()
	e.exec(`INSERT INTO groups (id, name, priority, run_config) VALUES ($1, 'lab', 5, '{"pids_limit": -1, "cap_drop": ["ALL"]}')`, groupID)
	e.exec(`INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)`, f.userID, groupID)
	s, _ := e.onDemandReady(f, f.userID)
	if in, err = e.inspect(s.ContainerID); err != nil {
		t.Fatal(err)
	}
	got := hardeningOf(t, in)
	if !slices.Equal(got.capAdd, []string{"NET_RAW"}) || !slices.Equal(got.capDrop, []string{"ALL"}) ||
		!slices.Equal(got.securityOpt, []string{"no-new-privileges=false"}) || got.pidsLimit > 0 {
		t.Errorf("on-demand container: %+v, want cap_add [NET_RAW] (cap_drop ALL), no-new-privileges=false and no pids limit", got)
	}
	if bnd := e.procStatus(s.ContainerID, "CapBnd"); bnd != "0000000000002000" {
		t.Errorf("on-demand container: capability bounding set %s, want NET_RAW's alone", bnd)
	}
}

// TestStoredReadinessPathThatIsNotAPathFailsTheSession: the config service
// refuses a readiness_path that is not an HTTP path, but one stored before
// it did must not send the probe to another host ("@host/…" after
// http://agent:port): the session fails with a detail naming the field,
// before any container is made.
func TestStoredReadinessPathThatIsNotAPathFailsTheSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{readinessPath: ptr("@169.254.169.254/latest/meta-data")})
	sid, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	failed := decode[events.SessionFailed](t, e.waitEvent(events.TypeSessionFailed, 30*time.Second, dataIs("request_id", rid)))
	if failed.Reason != events.ReasonProvisioningFailed || !strings.Contains(failed.Detail, "readiness_path") ||
		!strings.Contains(failed.Detail, "workspace demo") {
		t.Errorf("session.failed = %+v, want provisioning_failed naming the workspace's readiness_path", failed)
	}
	if s := e.session(sid); s.Status != sessions.Failed {
		t.Errorf("session is %s, want failed", s.Status)
	}
	if n := len(e.containers(map[string]string{domain.LabelSession: sid})); n != 0 {
		t.Errorf("%d containers for the refused session", n)
	}

	// Its staging pool does not fill either, and says why.
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a failed staged creation", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Failed) >= 1 })
	var reason string
	if err := e.db.Get(&reason, `SELECT failure_reason FROM sessions WHERE staging_config_id = $1 AND status = 'failed' LIMIT 1`, cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "readiness_path") {
		t.Errorf("staged creation failed with %q", reason)
	}
	if n := len(e.containers(map[string]string{domain.LabelStagingConfig: cfg})); n != 0 {
		t.Errorf("%d staged containers of a workspace with a bad readiness_path", n)
	}
}
