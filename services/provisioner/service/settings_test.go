package service_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// inContainer runs the demo image's binary in a session's container as
// root and returns what it printed: what the process inside sees.
func (e *env) inContainer(containerID string, args ...string) (string, int) {
	e.t.Helper()
	return e.inContainerAs(containerID, "0", args...)
}

// inContainerAs is inContainer as user. Under no-new-privileges (the
// default) a root exec in a container whose process runs as another user
// has no capabilities: it reads that user's private files as that user.
func (e *env) inContainerAs(containerID, user string, args ...string) (string, int) {
	e.t.Helper()
	ex, err := e.docker.ExecCreate(e.ctx, containerID, client.ExecCreateOptions{
		Cmd: append([]string{"/demo-workspace"}, args...), AttachStdout: true, AttachStderr: true, User: user,
	})
	if err != nil {
		e.t.Fatalf("exec %v: %v", args, err)
	}
	att, err := e.docker.ExecAttach(e.ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		e.t.Fatalf("exec %v: %v", args, err)
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		e.t.Fatalf("exec %v output: %v", args, err)
	}
	in, err := e.docker.ExecInspect(e.ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.String(), in.ExitCode
}

// addPolicy stores a web filter policy and returns its id.
func (e *env) addPolicy(name string, defaultAllow bool, allowed ...string) string {
	id := uuid.NewString()
	e.exec(`INSERT INTO web_filter_policies (id, name, default_allow, allowed_domains) VALUES ($1, $2, $3, $4)`,
		id, name, defaultAllow, pq.StringArray(append([]string{}, allowed...)))
	return id
}

// onDemandReady requests an on-demand session for user and waits until it
// runs.
func (e *env) onDemandReady(f fixture, userID string) (sessions.Session, time.Duration) {
	e.t.Helper()
	f.userID = userID
	start := time.Now()
	id, rid := e.requestOnDemand(f, []string{f.zone}, events.Permissions{})
	e.waitEvent(events.TypeSessionReady, 60*time.Second, dataIs("request_id", rid))
	took := time.Since(start)
	s := e.session(id)
	if s.Status != sessions.Running {
		e.t.Fatalf("session %s is %s (%s), want running", id, s.Status, s.FailureReason)
	}
	return s, took
}

func (e *env) destroyed(id string) {
	e.t.Helper()
	e.emit(events.TypeSessionDestroy, events.SessionDestroy{SessionID: id, Reason: "test"})
	e.waitEvent(events.TypeSessionDestroyed, 30*time.Second, dataIs("session_id", id))
}

// TestOnDemandSessionGetsTheSettingsOfItsWorkspaceAndGroup checks every
// setting that must be applied at the container's invocation against a
// real container: docker inspect, and what the process inside sees.
func TestOnDemandSessionGetsTheSettingsOfItsWorkspaceAndGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	agentDir := t.TempDir() // the agent is this host's engine
	f := e.standardFixture(workspaceOptions{initDelay: "0s", execConfig: `{
		"assign": {"cmd": "/demo-workspace assign --user {username}"},
		"first_launch": {"cmd": ["/demo-workspace", "file", "append", "/var/lib/greenroom-demo/first-launch", "{session_id} {username} {workspace}"], "user": "0"}}`})
	wsPolicy := e.addPolicy("workspace-policy", true)
	e.exec(`UPDATE workspaces SET persistent_profile_path = $2, volume_mappings = $3, web_filter_policy_id = $4,
			run_config = '{"environment": {"GREENROOM_DEMO_INIT_DELAY": "0s", "FROM_WS": "ws", "BOTH": "ws"}, "hostname": "ws-host",
				"labels": {"team": "blue"}, "user": "1000:1000", "working_dir": "/var", "dns": ["10.0.0.53"],
				"extra_hosts": {"db.internal": "10.0.0.9"}, "cap_add": ["NET_ADMIN"], "devices": ["/dev/null:/dev/xnull:rw"]}'
		WHERE id = $1`, f.workspaceID,
		filepath.Join(agentDir, "profiles/{workspace}/{username}"),
		fmt.Sprintf(`{%q: {"bind": "/data", "mode": "rw", "uid": 1234, "gid": 1234}, %q: {"bind": "/shared", "mode": "ro"}}`,
			filepath.Join(agentDir, "data/{user_id}"), filepath.Join(agentDir, "shared")), wsPolicy)
	if err := os.MkdirAll(filepath.Join(agentDir, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	groupPolicy := e.addPolicy("kids", false, "example.com", "*.example.org")
	groupID := uuid.NewString()
	e.exec(`INSERT INTO groups (id, name, priority, inject_ssh_keys, expose_user_environment_vars, run_config, web_filter_policy_id)
		VALUES ($1, 'ssh-users', 5, true, true,
			'{"hostname": "group-host", "environment": {"BOTH": "group", "FROM_GROUP": "g"}, "cap_drop": ["NET_RAW"], "shm_size": "96m"}', $2)`,
		groupID, groupPolicy)
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm7o5Xc9rU0m8FJ0mxVjvtnPo0d1w3cZ9e3fQmYyGdw alice@laptop"
	e.exec(`UPDATE users SET ssh_public_keys = $2, attributes = '{"cost_center": "42", "Team": "red"}' WHERE id = $1`, f.userID, pq.StringArray{key})
	e.exec(`INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)`, f.userID, groupID)
	bobID := e.addUser("bob")
	e.exec(`INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)`, bobID, groupID)

	s, took := e.onDemandReady(f, f.userID)
	t.Logf("on demand with a persistent profile, two volume mappings, SSH keys and attributes: request → running %s", took.Round(time.Millisecond))

	in, err := e.inspect(s.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(agentDir, "profiles/demo/alice")
	wantBinds := []string{profile + ":/home/kasm-user:rw", filepath.Join(agentDir, "data", f.userID) + ":/data:rw", filepath.Join(agentDir, "shared") + ":/shared:ro"}
	if !slices.Equal(in.HostConfig.Binds, wantBinds) {
		t.Errorf("binds %v, want %v", in.HostConfig.Binds, wantBinds)
	}
	// The group's cap_drop (NET_RAW, not in the default set) and the
	// workspace's cap_add (NET_ADMIN) change Greenroom's default set,
	// sent as CapDrop ALL and CapAdd what is kept.
	wantCaps := append(slices.Clone(containerconfig.DefaultCapabilities), "NET_ADMIN")
	slices.Sort(wantCaps)
	if got := hardeningOf(t, in); in.Config.Hostname != "group-host" || !slices.Equal(got.capDrop, []string{"ALL"}) || in.HostConfig.ShmSize != 96<<20 {
		t.Errorf("run_config (group wins per key) not applied: hostname %q cap_drop %v shm %d", in.Config.Hostname, in.HostConfig.CapDrop, in.HostConfig.ShmSize)
	}
	if in.Config.User != "1000:1000" || in.Config.WorkingDir != "/var" || !slices.Equal(in.HostConfig.DNS, []netip.Addr{netip.MustParseAddr("10.0.0.53")}) ||
		!slices.Equal(in.HostConfig.ExtraHosts, []string{"db.internal:10.0.0.9"}) || !slices.Equal(hardeningOf(t, in).capAdd, wantCaps) ||
		len(in.HostConfig.Devices) != 1 || in.HostConfig.Devices[0].PathInContainer != "/dev/xnull" || in.HostConfig.Devices[0].CgroupPermissions != "rw" {
		t.Errorf("run_config options not applied: user %q workdir %q dns %v extra_hosts %v cap_add %v devices %+v", in.Config.User,
			in.Config.WorkingDir, in.HostConfig.DNS, in.HostConfig.ExtraHosts, in.HostConfig.CapAdd, in.HostConfig.Devices)
	}
	if top, err := e.docker.ContainerTop(e.ctx, s.ContainerID, client.ContainerTopOptions{Arguments: []string{"-o", "pid,uid"}}); err != nil || len(top.Processes) == 0 || top.Processes[0][1] != "1000" {
		t.Errorf("the container's process does not run as its run_config user: %v %v", top.Processes, err)
	}
	if in.Config.Labels["team"] != "blue" || in.Config.Labels[domain.LabelUser] != "alice" || in.Config.Labels[domain.LabelSession] != s.ID {
		t.Errorf("labels %v", in.Config.Labels)
	}

	env, _ := e.inContainer(s.ContainerID, "env")
	for _, want := range []string{"GREENROOM_USER=alice", "GREENROOM_USER_ID=" + f.userID, "GREENROOM_SESSION_ID=" + s.ID,
		"GREENROOM_USER_COST_CENTER=42", "GREENROOM_USER_TEAM=red", "hostname=group-host",
		`GREENROOM_WEB_FILTER={"name":"kids","default_allow":false,"allowed_domains":["example.com","*.example.org"],"denied_domains":[]}`} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("the container's process does not see %s:\n%s", want, env)
		}
	}
	for _, want := range []string{"FROM_WS=ws", "FROM_GROUP=g", "BOTH=group"} {
		if !slices.Contains(in.Config.Env, want) {
			t.Errorf("environment lacks %s: %v", want, in.Config.Env)
		}
	}
	if keys, code := e.inContainerAs(s.ContainerID, "1000", "file", "read", "/home/kasm-user/.ssh/authorized_keys"); code != 0 || keys != key+"\n" {
		t.Errorf("authorized_keys = %q (exit %d)", keys, code)
	}
	if st, _ := e.inContainerAs(s.ContainerID, "1000", "file", "stat", "/home/kasm-user/.ssh/authorized_keys"); !strings.HasPrefix(st, "-rw------- 1000:1000") {
		t.Errorf("authorized_keys is %q, want -rw------- owned by 1000:1000", st)
	}
	if st, _ := e.inContainer(s.ContainerID, "file", "stat", "/data"); !strings.HasSuffix(st, " 1234:1234\n") {
		t.Errorf("/data is %q, want owned by 1234:1234 as its mapping says", st)
	}
	if fi, err := os.Stat(filepath.Join(agentDir, "data", f.userID)); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 1234 {
		t.Errorf("the mapping's directory on the agent: %v", err)
	}
	if _, code := e.inContainer(s.ContainerID, "file", "write", "/shared/x", "no"); code == 0 {
		t.Error("a read-only mapping was writable")
	}
	if fl, _ := e.inContainer(s.ContainerID, "file", "read", "/var/lib/greenroom-demo/first-launch"); fl != s.ID+" alice demo\n" {
		t.Errorf("first_launch ran as %q, want once for this session", fl)
	}
	if !e.session(s.ID).FirstLaunchAt.Valid {
		t.Error("first_launch_at not recorded")
	}
	if code, body := httpGet(t, s.UpstreamURL); code != 200 || !strings.Contains(body, "Created for alice") || !strings.Contains(body, "Web filter policy kids") {
		t.Errorf("the page does not show its user and policy: %d\n%s", code, body)
	}

	// A file written in the user's first session is there in their next
	// one, and not in another user's.
	if _, code := e.inContainerAs(s.ContainerID, "1000", "file", "write", "/home/kasm-user/notes.txt", "alice was here"); code != 0 {
		t.Fatal("writing into the profile failed")
	}
	e.destroyed(s.ID)
	again, warm := e.onDemandReady(f, f.userID)
	t.Logf("again, warm: request → running %s", warm.Round(time.Millisecond))
	if notes, code := e.inContainerAs(again.ContainerID, "1000", "file", "read", "/home/kasm-user/notes.txt"); code != 0 || notes != "alice was here\n" {
		t.Errorf("the profile did not persist: %q (exit %d)", notes, code)
	}
	bob, _ := e.onDemandReady(f, bobID)
	if notes, code := e.inContainerAs(bob.ContainerID, "1000", "file", "read", "/home/kasm-user/notes.txt"); code == 0 {
		t.Errorf("bob sees alice's profile: %q", notes)
	}
	if env, _ := e.inContainer(bob.ContainerID, "env"); !strings.Contains(env, "GREENROOM_USER=bob\n") || strings.Contains(env, "COST_CENTER") {
		t.Errorf("bob's container:\n%s", env)
	}

	// The same workspace without the per-user settings, for the time
	// they add.
	e.exec(`UPDATE workspaces SET persistent_profile_path = '', volume_mappings = '{}' WHERE id = $1`, f.workspaceID)
	_, plain := e.onDemandReady(f, f.userID)
	t.Logf("the same user and group without profile or mappings: request → running %s", plain.Round(time.Millisecond))
}

// TestStagedContainerCarriesItsConfigFromCreationAndLearnsItsUserOnAssign:
// a staged container is made with the staging config's permissions and the
// zone's domains (environment and labels); its user comes with assign,
// after which first_launch runs once.
func TestStagedContainerCarriesItsConfigFromCreationAndLearnsItsUserOnAssign(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	f := e.standardFixture(workspaceOptions{execConfig: `{
		"assign": {"cmd": "/demo-workspace assign --user {username} --user-id {user_id}"},
		"first_launch": {"cmd": ["/demo-workspace", "file", "append", "/var/lib/greenroom-demo/first-launch", "{session_id} {username}"], "user": "0"}}`})
	e.exec(`UPDATE zones SET allow_origin_domain = 'ws.example.com', upstream_auth_address = 'auth.example.com' WHERE id = $1`, f.zoneID)
	// A workspace's policy is fixed per workspace: staged containers carry it.
	e.exec(`UPDATE workspaces SET web_filter_policy_id = $2 WHERE id = $1`, f.workspaceID, e.addPolicy("office", true))
	cfg := e.addStagingConfig(f, 1, events.Permissions{AllowAudio: true, AllowUploads: true})
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("a staged session", 30*time.Second, func() bool { return e.countSessions(cfg, sessions.Staged) == 1 })
	list := e.containers(map[string]string{domain.LabelStagingConfig: cfg})
	if len(list) != 1 {
		t.Fatalf("%d containers", len(list))
	}
	in, err := e.inspect(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"greenroom.allow_audio": "true", "greenroom.allow_uploads": "true", "greenroom.allow_gamepad": "false",
		domain.LabelAllowOriginDomain: "ws.example.com", domain.LabelUpstreamAuthAddress: "auth.example.com"} {
		if in.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, in.Config.Labels[k], v)
		}
	}
	env, _ := e.inContainer(list[0].ID, "env")
	for _, want := range []string{"GREENROOM_ALLOW_AUDIO=true", "GREENROOM_ALLOW_MICROPHONE=false",
		"GREENROOM_ALLOW_ORIGIN_DOMAIN=ws.example.com", "GREENROOM_UPSTREAM_AUTH_ADDRESS=auth.example.com",
		`GREENROOM_WEB_FILTER={"name":"office","default_allow":true,"allowed_domains":[],"denied_domains":[]}`} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("the staged container does not see %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "GREENROOM_USER=") {
		t.Errorf("a staged container knows a user before it has one:\n%s", env)
	}
	if _, code := e.inContainer(list[0].ID, "file", "read", "/var/lib/greenroom-demo/first-launch"); code == 0 {
		t.Error("first_launch ran before the session had a user")
	}

	claimed, rid := e.claimStaged(f, cfg)
	e.waitEvent(events.TypeSessionReady, 30*time.Second, dataIs("request_id", rid))
	if fl, _ := e.inContainer(claimed.ContainerID, "file", "read", "/var/lib/greenroom-demo/first-launch"); fl != claimed.ID+" "+f.user+"\n" {
		t.Errorf("first_launch after assign wrote %q", fl)
	}
	if code, body := httpGet(t, claimed.UpstreamURL); code != 200 || !strings.Contains(body, "Assigned to "+f.user) {
		t.Errorf("page after assign: %d\n%s", code, body)
	}
	// A redelivered assignment runs neither command again.
	e.emit(events.TypeSessionAssigned, events.SessionAssigned{RequestID: rid, SessionID: claimed.ID, User: f.user, UserID: f.userID,
		Workspace: f.wsName, Zone: f.zone, StagingConfigID: cfg})
	e.waitIdle()
	if fl, _ := e.inContainer(claimed.ContainerID, "file", "read", "/var/lib/greenroom-demo/first-launch"); strings.Count(fl, "\n") != 1 {
		t.Errorf("first_launch ran more than once: %q", fl)
	}
}
