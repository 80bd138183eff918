package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/signin"
	configsvc "github.com/greenroom-dev/greenroom/services/config/service"
)

// configService is a real config service on its own PostgreSQL database
// and NATS server, serving its admin API over HTTP.
type configService struct {
	t     *testing.T
	env   *apptest.Env
	URL   string
	token string
}

func startConfigService(t *testing.T) *configService {
	t.Helper()
	env := apptest.New(t)
	token := "apply-test-token"
	svc, err := configsvc.New(env.Deps(t, "config"), configsvc.Config{AdminToken: token})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, svc)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return &configService{t: t, env: env, URL: srv.URL, token: token}
}

// cliEnv is the environment of a CLI run against this service, with extra
// variables.
func (c *configService) cliEnv(extra ...string) map[string]string {
	env := map[string]string{"GREENROOM_API_URL": c.URL, "GREENROOM_ADMIN_TOKEN": c.token}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return env
}

// cli runs the CLI against this service with stdin, failing the test
// unless it exits with code.
func (c *configService) cli(stdin string, wantCode int, env map[string]string, args ...string) (stdout, stderr string) {
	c.t.Helper()
	if env == nil {
		env = c.cliEnv()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := runWithStdin(ctx, args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	if code != wantCode {
		c.t.Fatalf("greenroom %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// get GETs path from the API into out and returns the status.
func (c *configService) get(path string, out any) int {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			c.t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// fullConfiguration names every kind apply covers, with references
// between them and fields of every shape (lists, objects, nulls,
// durations, numbers, a $ that is not a variable).
const fullConfiguration = `
kind: zone
name: zone-a
search_alternate_zones: true
allow_origin_domain: sessions.example.com
upstream_auth_address: https://auth.example.com
load_balancing: most_load
priority: 1
---
kind: zone
name: zone-b
---
kind: pool
name: desktops
type: server
server_assignment: true
labels: [gpu]
---
kind: pool
name: big-agents
type: docker_agent
labels: [ssd, fast]
---
kind: web-filter-policy
name: strict
default_allow: false
allowed_domains: [example.com, "*.example.org"]
---
kind: group
name: staff
priority: 10
allow_audio: false
session_time_limit: 8h
keepalive_expiration: 30m
run_config:
  environment: {LANG: en_US.UTF-8}
web_filter_policy: strict
---
- kind: group
  name: everyone
- kind: user
  username: carol
  groups: [staff, everyone]
  attributes: {department: design}
- kind: user
  username: dave
`
const fullConfigurationRest = `
kind: agent
name: agent-1
zone: zone-a
pool: big-agents
docker_endpoint: unix:///var/run/docker.sock
cores: 4
memory_mb: 4096
labels: [local]
---
kind: server
name: desk-1
zone: zone-a
pool: desktops
address: 10.0.0.1
max_sessions: 2
assigned_user: carol
---
kind: workspace
name: browser
image: example/browser:1
cores: 0.5
memory_mb: 256
include_labels: [ssd]
web_filter_policy: strict
volume_mappings:
  /srv/shared: {bind: /home/kasm-user/shared, mode: ro}
docker_exec_config:
  first_launch: {cmd: [/bin/sh, -c, "echo $HOME $${NOT_A_VAR}"]}
assign_hook: {path: /.greenroom/assign, timeout: 3s}
---
kind: workspace
name: desk
server_pool: desktops
---
kind: staging-config
zone: zone-a
workspace: browser
desired_sessions: 2
expiration_hours: 0.5
allow_gamepad: false
schedule:
  - {cron: "45 12 * * 1-5", duration: 2h, desired_sessions: 30}
---
kind: vm-provider
name: local
type: local_docker
settings: {cores: 2, memory_mb: 2048}
---
kind: dns-provider
name: bind
type: rfc2136
settings: {server: "10.0.0.2:53", zone: agents.example.com}
---
kind: autoscale-config
name: big-agents-a
pool: big-agents
zone: zone-a
enabled: false
standby_cores: 2
max_agents: 3
downscale_backoff: 10m
vm_provider: local
dns_provider: bind
`

// TestGetAllYAMLAppliedToAnotherDatabaseRecreatesTheConfiguration: what
// `get all -o yaml` prints of one deployment, applied to another with an
// empty database, makes that one's configuration the same — every kind,
// references by name, no read-only field — and applying it again changes
// nothing.
func TestGetAllYAMLAppliedToAnotherDatabaseRecreatesTheConfiguration(t *testing.T) {
	a, b := startConfigService(t), startConfigService(t)
	out, _ := a.cli(fullConfiguration+"---\n"+fullConfigurationRest, exitOK, nil, "apply", "-f", "-")
	if !strings.Contains(out, "apply: 17 created, 0 changed, 0 unchanged, 0 deleted") {
		t.Fatalf("first apply:\n%s", out)
	}
	// Created in dependency order, whatever the file's order.
	order := []string{"zone/zone-a created", "pool/desktops created", "web-filter-policy/strict created", "group/staff created",
		"user/carol created", "agent/agent-1 created", "server/desk-1 created", "workspace/browser created", "staging-config/zone-a/browser created"}
	for _, line := range []string{"vm-provider/local created", "dns-provider/bind created", "autoscale-config/big-agents-a created"} {
		if !strings.Contains(out, line) {
			t.Errorf("no %q:\n%s", line, out)
		}
	}
	if strings.Index(out, "pool/desktops created") > strings.Index(out, "autoscale-config/big-agents-a created") ||
		strings.Index(out, "vm-provider/local created") > strings.Index(out, "autoscale-config/big-agents-a created") {
		t.Errorf("the autoscale config created before what it names:\n%s", out)
	}
	last := -1
	for _, line := range order {
		i := strings.Index(out, line)
		if i < last {
			t.Errorf("%q out of dependency order:\n%s", line, out)
		}
		last = i
	}

	dumpA, _ := a.cli("", exitOK, nil, "get", "all", "-o", "yaml")
	for _, readOnly := range []string{"id:", "created_at", "updated_at", "current_sessions", "status:", "revision", "has_password", "free_cores", "members"} {
		if strings.Contains(dumpA, readOnly) {
			t.Errorf("get all -o yaml writes read-only %s:\n%s", readOnly, dumpA)
		}
	}
	if !strings.Contains(dumpA, `$HOME $${NOT_A_VAR}`) {
		t.Errorf("the literal ${NOT_A_VAR} is not escaped for apply:\n%s", dumpA)
	}

	out, _ = b.cli(dumpA, exitOK, nil, "apply", "-f", "-")
	if !strings.Contains(out, "apply: 17 created, 0 changed, 0 unchanged, 0 deleted") {
		t.Fatalf("apply on the other database:\n%s", out)
	}
	dumpB, _ := b.cli("", exitOK, nil, "get", "all", "-o", "yaml")
	if dumpA != dumpB {
		t.Errorf("configurations differ.\nA:\n%s\nB:\n%s", dumpA, dumpB)
	}
	jsonA, _ := a.cli("", exitOK, nil, "get", "all", "-o", "json")
	jsonB, _ := b.cli("", exitOK, nil, "get", "all", "-o", "json")
	if jsonA != jsonB {
		t.Errorf("get all -o json differs:\nA:\n%s\nB:\n%s", jsonA, jsonB)
	}

	// The values themselves, as the API of B answers them.
	var ws map[string]any
	b.get("/api/v1/workspaces/browser", &ws)
	exec, _ := json.Marshal(ws["docker_exec_config"])
	if string(exec) != `{"first_launch":{"cmd":["/bin/sh","-c","echo $HOME ${NOT_A_VAR}"]}}` || ws["server_pool"] != nil || ws["cores"] != 0.5 {
		t.Errorf("workspace browser on B = %v (docker_exec_config %s)", ws, exec)
	}
	var server map[string]any
	b.get("/api/v1/servers/desk-1", &server)
	if server["assigned_user"] != "carol" || server["pool"] != "desktops" {
		t.Errorf("server desk-1 on B = %v", server)
	}
	var group map[string]any
	b.get("/api/v1/groups/staff", &group)
	if group["session_time_limit"] != "8h0m0s" || group["allow_audio"] != false || group["web_filter_policy"] != "strict" {
		t.Errorf("group staff on B = %v", group)
	}

	// Applying the same again, on either side, finds nothing to do.
	out, _ = b.cli(dumpA, exitOK, nil, "apply", "-f", "-")
	if !strings.Contains(out, "apply: 0 created, 0 changed, 17 unchanged, 0 deleted") {
		t.Errorf("second apply:\n%s", out)
	}
	out, _ = a.cli(fullConfiguration+"---\n"+fullConfigurationRest, exitOK, nil, "apply", "-f", "-")
	if !strings.Contains(out, "apply: 0 created, 0 changed, 17 unchanged, 0 deleted") {
		t.Errorf("the original file applied again (8h against 8h0m0s, groups in another order):\n%s", out)
	}
}

// TestApplyChangesWhatDiffersAndDryRunChangesNothing: a changed field is
// reported by name and PATCHed; with --dry-run the same report, and the
// API keeps its value.
func TestApplyChangesWhatDiffersAndDryRunChangesNothing(t *testing.T) {
	c := startConfigService(t)
	c.cli(fullConfiguration+"---\n"+fullConfigurationRest, exitOK, nil, "apply", "-f", "-")
	changed := strings.Replace(fullConfigurationRest, "desired_sessions: 2", "desired_sessions: 5", 1)
	changed = strings.Replace(changed, "labels: [local]", "labels: [local, nvme]", 1)
	changed += "---\nkind: zone\nname: zone-c\n"

	out, _ := c.cli(fullConfiguration+"---\n"+changed, exitOK, nil, "apply", "-f", "-", "--dry-run")
	for _, want := range []string{
		"staging-config/zone-a/browser changed (dry run): desired_sessions",
		"agent/agent-1 changed (dry run): labels",
		"zone/zone-c created (dry run)",
		"workspace/browser unchanged (dry run)",
		"apply: 1 created, 2 changed, 15 unchanged, 0 deleted (dry run: nothing was changed)",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	var sc struct {
		Items []map[string]any `json:"items"`
	}
	c.get("/api/v1/staging-configs", &sc)
	if len(sc.Items) != 1 || sc.Items[0]["desired_sessions"] != 2.0 {
		t.Fatalf("after the dry run the staging config is %v", sc.Items)
	}
	if code := c.get("/api/v1/zones/zone-c", nil); code != http.StatusNotFound {
		t.Fatalf("the dry run created zone-c (GET answers %d)", code)
	}

	out, _ = c.cli(fullConfiguration+"---\n"+changed, exitOK, nil, "apply", "-f", "-")
	if !strings.Contains(out, "staging-config/zone-a/browser changed: desired_sessions\n") ||
		!strings.Contains(out, "apply: 1 created, 2 changed, 15 unchanged, 0 deleted\n") {
		t.Errorf("apply:\n%s", out)
	}
	c.get("/api/v1/staging-configs", &sc)
	var agent map[string]any
	c.get("/api/v1/agents/agent-1", &agent)
	if sc.Items[0]["desired_sessions"] != 5.0 || fmt.Sprint(agent["labels"]) != "[local nvme]" {
		t.Errorf("after apply: staging config %v, agent labels %v", sc.Items[0], agent["labels"])
	}
	if code := c.get("/api/v1/zones/zone-c", nil); code != http.StatusOK {
		t.Errorf("zone-c not created (GET answers %d)", code)
	}
}

// TestApplyPruneDeletesWhatTheFileNoLongerNamesOfTheKindsItMentions: with
// --prune, users and groups the file leaves out go (users first: they are
// in groups), and zones, a kind the file does not mention, stay.
func TestApplyPruneDeletesWhatTheFileNoLongerNamesOfTheKindsItMentions(t *testing.T) {
	c := startConfigService(t)
	c.cli("kind: zone\nname: zone-a\n---\nkind: group\nname: staff\n---\nkind: group\nname: old\n---\n"+
		"kind: user\nusername: carol\ngroups: [old]\n---\nkind: user\nusername: dave\n", exitOK, nil, "apply", "-f", "-")

	next := "kind: group\nname: staff\n---\nkind: user\nusername: dave\ngroups: [staff]\n"
	out, _ := c.cli(next, exitOK, nil, "apply", "-f", "-", "--prune", "--dry-run")
	if !strings.Contains(out, "user/carol deleted (dry run)\ngroup/old deleted (dry run)\n") {
		t.Errorf("dry run of the prune:\n%s", out)
	}
	if code := c.get("/api/v1/users/carol", nil); code != http.StatusOK {
		t.Fatalf("the dry run deleted carol (%d)", code)
	}
	out, _ = c.cli(next, exitOK, nil, "apply", "-f", "-", "--prune")
	if !strings.Contains(out, "user/dave changed: groups\nuser/carol deleted\ngroup/old deleted\n") ||
		!strings.Contains(out, "apply: 0 created, 1 changed, 1 unchanged, 2 deleted") {
		t.Errorf("prune:\n%s", out)
	}
	for path, want := range map[string]int{"/api/v1/users/carol": 404, "/api/v1/groups/old": 404, "/api/v1/users/dave": 200, "/api/v1/zones/zone-a": 200} {
		if code := c.get(path, nil); code != want {
			t.Errorf("GET %s after the prune: %d, want %d", path, code, want)
		}
	}
}

// TestApplySetsWriteOnlyPasswordsFromVariables: a password given as
// ${VAR} is set on create and again on every apply (it cannot be compared),
// so that it is the file's after apply; the line says so without counting
// a change.
func TestApplySetsWriteOnlyPasswordsFromVariables(t *testing.T) {
	c := startConfigService(t)
	file := "kind: group\nname: everyone\n---\nkind: user\nusername: alice\ngroups: [everyone]\npassword: \"${ALICE_PW}\"\n"
	ctx := context.Background()

	out, _ := c.cli(file, exitOK, c.cliEnv("ALICE_PW", "first-password"), "apply", "-f", "-")
	if !strings.Contains(out, "user/alice created\n") {
		t.Fatalf("apply:\n%s", out)
	}
	if _, err := signin.CheckPassword(ctx, c.env.DB, "alice", "first-password"); err != nil {
		t.Fatalf("alice cannot sign in with the file's password: %v", err)
	}

	out, _ = c.cli(file, exitOK, c.cliEnv("ALICE_PW", "second-password"), "apply", "-f", "-")
	if !strings.Contains(out, "user/alice unchanged; password set (write-only: not compared)\n") ||
		!strings.Contains(out, "apply: 0 created, 0 changed, 2 unchanged, 0 deleted") {
		t.Errorf("second apply:\n%s", out)
	}
	out, _ = c.cli(file, exitOK, c.cliEnv("ALICE_PW", "third-password"), "apply", "-f", "-", "--dry-run")
	if !strings.Contains(out, "user/alice unchanged (dry run); password would be set (write-only: not compared)\n") {
		t.Errorf("dry run:\n%s", out)
	}
	if _, err := signin.CheckPassword(ctx, c.env.DB, "alice", "second-password"); err != nil {
		t.Errorf("the new password does not work after apply: %v", err)
	}
	if _, err := signin.CheckPassword(ctx, c.env.DB, "alice", "first-password"); err == nil {
		t.Errorf("the old password still works")
	}

	// The password never shows, and an unset variable stops apply before
	// any change.
	dump, _ := c.cli("", exitOK, nil, "get", "users", "-o", "yaml")
	if strings.Contains(dump, "password") || !strings.Contains(dump, "username: alice") {
		t.Errorf("get users -o yaml:\n%s", dump)
	}
	_, errOut := c.cli(file+"---\nkind: zone\nname: zone-z\n", exitFailure, nil, "apply", "-f", "-")
	if !strings.Contains(errOut, "ALICE_PW is not set") {
		t.Errorf("unset variable: %s", errOut)
	}
	if code := c.get("/api/v1/zones/zone-z", nil); code != http.StatusNotFound {
		t.Errorf("apply with an unset variable created zone-z (%d)", code)
	}
}

// TestDemoFileAppliesTheConfigurationOfDemoLoad: make up loads
// deploy/demo/greenroom.yaml through apply; it is the configuration
// `greenroom demo load` makes, and the passwords it is given work.
func TestDemoFileAppliesTheConfigurationOfDemoLoad(t *testing.T) {
	loaded, applied := startConfigService(t), startConfigService(t)
	loaded.cli("", exitOK, nil, "demo", "load", "--auth-address", "127.0.0.1:8080",
		"--password", "alice=alice-pw-1234", "--password", "bob=bob-pw-12345")
	env := applied.cliEnv("DEMO_PASSWORD_ALICE", "alice-pw-1234", "DEMO_PASSWORD_BOB", "bob-pw-12345")
	out, _ := applied.cli("", exitOK, env, "apply", "-f", "../../deploy/demo/greenroom.yaml")
	if !strings.Contains(out, "apply: 10 created, 0 changed, 0 unchanged, 0 deleted") {
		t.Fatalf("apply of the demo file:\n%s", out)
	}
	want, _ := loaded.cli("", exitOK, nil, "get", "all", "-o", "yaml")
	got, _ := applied.cli("", exitOK, nil, "get", "all", "-o", "yaml")
	if got != want {
		t.Errorf("the demo file's configuration:\n%s\ndemo load's:\n%s", got, want)
	}
	for user, pw := range map[string]string{"alice": "alice-pw-1234", "bob": "bob-pw-12345"} {
		if _, err := signin.CheckPassword(context.Background(), applied.env.DB, user, pw); err != nil {
			t.Errorf("%s cannot sign in: %v", user, err)
		}
	}
	// DEMO_STAGED, as make up passes it.
	env["DEMO_STAGED"] = "5"
	out, _ = applied.cli("", exitOK, env, "apply", "-f", "../../deploy/demo/greenroom.yaml")
	if !strings.Contains(out, "staging-config/zone-a/demo changed: desired_sessions\n") {
		t.Errorf("DEMO_STAGED=5:\n%s", out)
	}
	// Without the passwords the file is refused, naming the variable.
	_, errOut := applied.cli("", exitFailure, nil, "apply", "-f", "../../deploy/demo/greenroom.yaml")
	if !strings.Contains(errOut, "DEMO_PASSWORD_ALICE is needed") {
		t.Errorf("without passwords: %s", errOut)
	}
}

// TestGetAndDeleteByKindAndName: get shows one resource or a kind as a
// table, delete removes one, and unknown names and kinds are errors.
func TestGetAndDeleteByKindAndName(t *testing.T) {
	c := startConfigService(t)
	c.cli(fullConfiguration+"---\n"+fullConfigurationRest, exitOK, nil, "apply", "-f", "-")

	out, _ := c.cli("", exitOK, nil, "get", "staging-configs")
	if !strings.Contains(out, "STAGING-CONFIG") || !strings.Contains(strings.Join(strings.Fields(out), " "), "zone-a/browser 2 0 ") {
		t.Errorf("get staging-configs:\n%s", out)
	}
	out, _ = c.cli("", exitOK, nil, "get", "zone", "zone-b", "-o", "json")
	var docs []map[string]any
	if err := json.Unmarshal([]byte(out), &docs); err != nil || len(docs) != 1 || docs[0]["kind"] != "zone" ||
		docs[0]["name"] != "zone-b" || docs[0]["allow_origin_domain"] != "$request_host$" {
		t.Errorf("get zone zone-b -o json: %v\n%s", err, out)
	}
	out, _ = c.cli("", exitOK, nil, "get", "all")
	for _, want := range []string{"ZONE ", "POOL ", "WEB-FILTER-POLICY ", "GROUP ", "USER ", "AGENT ", "SERVER ", "WORKSPACE ", "STAGING-CONFIG "} {
		if !strings.Contains(out, want) {
			t.Errorf("get all lacks the %s table:\n%s", want, out)
		}
	}

	// API keys: listed and deleted, never in get all (their secret is
	// shown only when a key is created).
	req, _ := http.NewRequest(http.MethodPost, c.URL+"/api/v1/api-keys", strings.NewReader(`{"name":"ci","scopes":["sessions"]}`))
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating an API key: %s", resp.Status)
	}
	out, _ = c.cli("", exitOK, nil, "get", "api-keys")
	if !strings.Contains(out, "API-KEY") || !strings.Contains(out, "ci ") || !strings.Contains(out, "grk_") {
		t.Errorf("get api-keys:\n%s", out)
	}
	if out, _ = c.cli("", exitOK, nil, "get", "all", "-o", "yaml"); strings.Contains(out, "api-key") {
		t.Errorf("get all shows API keys:\n%s", out)
	}
	c.cli("", exitOK, nil, "delete", "api-key", "ci")
	if code := c.get("/api/v1/api-keys/ci", nil); code != http.StatusNotFound {
		t.Errorf("API key ci still there (%d)", code)
	}

	out, _ = c.cli("", exitOK, nil, "delete", "staging-config", "zone-a/browser")
	if out != "staging-config/zone-a/browser deleted\n" {
		t.Errorf("delete staging-config: %q", out)
	}
	c.cli("", exitOK, nil, "delete", "workspace", "browser")
	if code := c.get("/api/v1/workspaces/browser", nil); code != http.StatusNotFound {
		t.Errorf("workspace browser still there (%d)", code)
	}
	_, errOut := c.cli("", exitFailure, nil, "delete", "zone", "zone-a")
	if !strings.Contains(errOut, "deleting zone/zone-a: DELETE /api/v1/zones/zone-a: 409") {
		t.Errorf("deleting a zone agents name: %s", errOut)
	}
	_, errOut = c.cli("", exitFailure, nil, "get", "user", "nobody")
	if !strings.Contains(errOut, "404") {
		t.Errorf("get user nobody: %s", errOut)
	}
	c.cli("", exitUsage, nil, "get", "gizmos")
	c.cli("", exitUsage, nil, "get", "zones", "-o", "xml")
	c.cli("", exitUsage, nil, "delete", "zone")
}

// TestApplyRefusesWhatTheAPICouldNotTakeBeforeChangingAnything: read-only
// and unknown fields, API keys and a resource given twice stop apply
// with where the file says it, before any call changes the configuration.
func TestApplyRefusesWhatTheAPICouldNotTakeBeforeChangingAnything(t *testing.T) {
	c := startConfigService(t)
	for file, want := range map[string]string{
		"kind: zone\nname: z\n---\nkind: staging-config\nzone: z\nworkspace: w\ndesired_sessions: 1\ncurrent_sessions: 1\n": "stdin:4: staging-config/z/w: field current_sessions is read-only",
		"kind: zone\nname: z\n---\nkind: zone\nname: y\npriorty: 3\n":                                                       `stdin:4: zone/y: unknown field "priorty"`,
		"kind: zone\nname: z\n---\nkind: api-key\nname: k\nscopes: [admin]\n":                                               "stdin:4: api-key resources are not applied",
		"kind: zone\nname: z\n---\nkind: zone\nname: z\n":                                                                   "stdin:4: zone/z is also at stdin:1",
		"kind: zone\nname: z\n---\nkind: gizmo\nname: g\n":                                                                  `stdin:4: unknown kind "gizmo"`,
		"kind: zone\nname: z\n---\nkind: user\nname: u\n":                                                                   "stdin:4: a user needs username",
	} {
		_, errOut := c.cli(file, exitFailure, nil, "apply", "-f", "-")
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q, want %q", errOut, want)
		}
	}
	if code := c.get("/api/v1/zones/z", nil); code != http.StatusNotFound {
		t.Errorf("a refused file created zone z (%d)", code)
	}
	// An error from the API names the resource and where the file has it.
	_, errOut := c.cli("kind: zone\nname: z\n---\nkind: agent\nname: a\nzone: nowhere\ndocker_endpoint: unix:///x\ncores: 1\nmemory_mb: 1\n",
		exitFailure, nil, "apply", "-f", "-")
	if !strings.Contains(errOut, "agent/a (stdin:4): POST /api/v1/agents: 400") || !strings.Contains(errOut, "nowhere") {
		t.Errorf("API refusal: %s", errOut)
	}
}

// TestListsFollowNextCursor: get lists every page of a list, following
// next_cursor (a page limit of 2 here, so that a list of 5 has 3 pages
// once the API paginates).
func TestListsFollowNextCursor(t *testing.T) {
	c := startConfigService(t)
	var file strings.Builder
	for i := range 5 {
		fmt.Fprintf(&file, "---\nkind: zone\nname: zone-%d\n", i)
	}
	c.cli(file.String(), exitOK, nil, "apply", "-f", "-")
	defer func(n int) { listPageLimit = n }(listPageLimit)
	listPageLimit = 2
	out, _ := c.cli("", exitOK, nil, "get", "zones")
	for i := range 5 {
		if !strings.Contains(out, fmt.Sprintf("zone-%d ", i)) {
			t.Errorf("get zones with pages of 2 lacks zone-%d:\n%s", i, out)
		}
	}
	out, _ = c.cli(file.String(), exitOK, nil, "apply", "-f", "-")
	if !strings.Contains(out, "apply: 0 created, 0 changed, 5 unchanged") {
		t.Errorf("apply with pages of 2 did not find every zone:\n%s", out)
	}
}

// TestVariablesInApplyFiles checks the docker-compose forms and that
// escapeVars is expandVars' inverse.
func TestVariablesInApplyFiles(t *testing.T) {
	env := map[string]string{"SET": "v", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v := env[k]; return v, v != "" }
	for in, want := range map[string]string{
		"${SET}": "v", "a${SET}b": "avb", "${UNSET:-d}": "d", "${EMPTY:-d}": "d", "${UNSET-d}": "d",
		"${SET:-d}": "v", "$request_host$": "$request_host$", "$$": "$", "$${SET}": "${SET}", "cost $5": "cost $5",
		"${SET:?no}": "v",
	} {
		if got, err := expandVars(in, lookup); err != nil || got != want {
			t.Errorf("expandVars(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"${UNSET}": "UNSET is not set", "${UNSET:?needs it}": "UNSET needs it", "${SET": "without a closing }",
		"${1X}": "not a variable name", "${SET:x}": "not ${NAME}",
	} {
		if _, err := expandVars(in, lookup); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("expandVars(%q) error %v, want %q", in, err, want)
		}
	}
	for _, s := range []string{"$request_host$", "${X}", "$$", "a$", "$$${Y}$", "$", "plain"} {
		if got, err := expandVars(escapeVars(s), lookup); err != nil || got != s {
			t.Errorf("expandVars(escapeVars(%q)) = %q, %v", s, got, err)
		}
	}
}

// TestEveryAppliedKindIsInTheAPIDescription: the fields apply accepts and
// get writes come from openapi.yaml; each kind must find its schemas there.
func TestEveryAppliedKindIsInTheAPIDescription(t *testing.T) {
	for _, k := range kinds {
		fs, err := fieldsOf(k)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range k.Key {
			if !fs.Read[key] {
				t.Errorf("%s: key field %s is not in schema %s", k.Name, key, k.Schema)
			}
		}
	}
	for name, field := range map[string]string{"user": "password", "vm-provider": "secrets", "dns-provider": "secrets"} {
		k, ok := kindNamed(name)
		if !ok {
			t.Fatalf("no kind %s", name)
		}
		if fs, _ := fieldsOf(k); !fs.writeOnly(field) {
			t.Errorf("%s's %s is not write-only: %+v", name, field, fs)
		}
	}
	if _, err := os.Stat("../../deploy/demo/greenroom.yaml"); err != nil {
		t.Error(err)
	}
}

// syncBuffer is a bytes.Buffer safe to write and read at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPruneWaitsForTheStagedSessionsOfADeletedStagingConfig: the staged
// sessions of a staging config outlive its deletion until the provisioner
// destroys them, and their workspace cannot be deleted before; --prune
// waits for them, showing the count left on stderr, or gives up after
// --wait-timeout saying why.
func TestPruneWaitsForTheStagedSessionsOfADeletedStagingConfig(t *testing.T) {
	c := startConfigService(t)
	base := "kind: zone\nname: zone-a\nallow_origin_domain: example.com\nupstream_auth_address: example.com\n---\n" +
		"kind: agent\nname: agent-1\nzone: zone-a\ndocker_endpoint: unix:///var/run/docker.sock\ncores: 4\nmemory_mb: 4096\n---\n" +
		"kind: workspace\nname: other\nimage: example/other:1\n---\nkind: staging-config\nzone: zone-a\nworkspace: other\ndesired_sessions: 0\n"
	c.cli(base+"---\nkind: workspace\nname: browser\nimage: example/browser:1\n---\n"+
		"kind: staging-config\nzone: zone-a\nworkspace: browser\ndesired_sessions: 2\n", exitOK, nil, "apply", "-f", "-")
	// Two staged sessions, as the provisioner would have made them.
	ctx := context.Background()
	stage := func() {
		for range 2 {
			if _, err := c.env.DB.ExecContext(ctx, `INSERT INTO sessions (id, workspace_id, zone_id, agent_id, staging_config_id, origin, status)
				SELECT $1, w.id, z.id, a.id, sc.id, 'staged', 'staged'
				FROM workspaces w, zones z, agents a, staging_configs sc
				WHERE w.name = 'browser' AND z.name = 'zone-a' AND a.name = 'agent-1' AND sc.workspace_id = w.id AND sc.deleted_at IS NULL`,
				uuid.NewString()); err != nil {
				t.Fatal(err)
			}
		}
	}
	stage()

	// Without a provisioner the wait ends at --wait-timeout.
	_, errOut := c.cli(base, exitFailure, nil, "apply", "-f", "-", "--prune", "--wait-timeout", "1s")
	if !strings.Contains(errOut, "workspace/browser: waiting for 2 staged session(s)") ||
		!strings.Contains(errOut, "deleting workspace/browser: 2 staged session(s) of its deleted staging config(s) not destroyed after 1s") {
		t.Fatalf("stderr:\n%s", errOut)
	}

	// Re-create the staging config; this time the sessions are destroyed,
	// one after the other, while apply waits.
	c.cli(base+"---\nkind: workspace\nname: browser\nimage: example/browser:1\n---\n"+
		"kind: staging-config\nzone: zone-a\nworkspace: browser\ndesired_sessions: 2\n", exitOK, nil, "apply", "-f", "-")
	if _, err := c.env.DB.ExecContext(ctx, `UPDATE sessions SET status = 'destroyed'`); err != nil {
		t.Fatal(err)
	}
	stage()
	var out bytes.Buffer
	stderr := &syncBuffer{}
	done := make(chan int)
	go func() {
		env := c.cliEnv()
		runCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		done <- runWithStdin(runCtx, []string{"apply", "-f", "-", "--prune"}, strings.NewReader(base), &out, stderr, func(k string) string { return env[k] })
	}()
	for left := 2; left > 0; left-- {
		apptest.Eventually(t, 20*time.Second, fmt.Sprintf("apply waiting for %d", left), func() bool {
			return strings.Contains(stderr.String(), fmt.Sprintf("waiting for %d staged session(s)", left))
		})
		if _, err := c.env.DB.ExecContext(ctx, `UPDATE sessions SET status = 'destroyed' WHERE id = (
			SELECT id FROM sessions WHERE status = 'staged' LIMIT 1)`); err != nil {
			t.Fatal(err)
		}
	}
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), stderr.String())
	}
	if !strings.Contains(out.String(), "staging-config/zone-a/browser deleted\nworkspace/browser deleted\n") ||
		!strings.Contains(stderr.String(), "workspace/browser: staged sessions destroyed after") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
	}
	if code := c.get("/api/v1/workspaces/browser", nil); code != http.StatusNotFound {
		t.Errorf("workspace browser still there (%d)", code)
	}
}

// TestApplyPlansEveryResourceBeforeChangingAnything: a change the API
// would refuse — a pool's type while an agent is in it, or a field the
// update body lacks — stops apply before its first write, though other
// resources (a zone to change, one to create) come earlier in the apply
// order; every refusal is named, and --dry-run reports the same error.
func TestApplyPlansEveryResourceBeforeChangingAnything(t *testing.T) {
	c := startConfigService(t)
	c.cli("kind: zone\nname: zone-a\npriority: 1\n---\nkind: pool\nname: p\ntype: docker_agent\n---\n"+
		"kind: agent\nname: agent-1\nzone: zone-a\npool: p\ndocker_endpoint: unix:///var/run/docker.sock\ncores: 4\nmemory_mb: 4096\n",
		exitOK, nil, "apply", "-f", "-")
	file := "kind: zone\nname: zone-a\npriority: 5\n---\nkind: zone\nname: zone-new\n---\nkind: pool\nname: p\ntype: server\n---\n" +
		"kind: group\nname: staff\npriority: 3\n"

	for _, args := range [][]string{{"apply", "-f", "-", "--dry-run"}, {"apply", "-f", "-"}} {
		out, errOut := c.cli(file, exitFailure, nil, args...)
		if !strings.Contains(errOut, "nothing was changed: pool/p (stdin:8): pool/p: field type differs (server, the API has docker_agent) but the API refuses to change it while 1 member(s)") {
			t.Errorf("%v: stderr:\n%s", args, errOut)
		}
		if !strings.HasPrefix(out, "apply: 0 created, 0 changed, 0 unchanged, 0 deleted") {
			t.Errorf("%v: stdout:\n%s", args, out)
		}
	}
	var zone map[string]any
	c.get("/api/v1/zones/zone-a", &zone)
	if zone["priority"] != 1.0 {
		t.Errorf("zone-a changed before the refusal: %v", zone)
	}
	for _, path := range []string{"/api/v1/zones/zone-new", "/api/v1/groups/staff"} {
		if code := c.get(path, nil); code != http.StatusNotFound {
			t.Errorf("created before the refusal: GET %s answers %d", path, code)
		}
	}

	// A field the update body lacks (as if ZoneUpdate had no priority):
	// refused with the other refusal, both before any write.
	zoneKind, _ := kindNamed("zone")
	fs, err := fieldsOf(zoneKind)
	if err != nil {
		t.Fatal(err)
	}
	update := map[string]bool{}
	for f, ok := range fs.Update {
		update[f] = ok && f != "priority"
	}
	apiFields[zoneKind.Schema] = fieldSets{Create: fs.Create, Update: update, Read: fs.Read}
	t.Cleanup(func() { apiFields[zoneKind.Schema] = fs })
	_, errOut := c.cli(file, exitFailure, nil, "apply", "-f", "-")
	if !strings.Contains(errOut, "zone/zone-a (stdin:1): zone/zone-a: field priority differs (5, the API has 1) but cannot be changed") ||
		!strings.Contains(errOut, "\npool/p (stdin:8)") {
		t.Errorf("two refusals:\n%s", errOut)
	}
	if code := c.get("/api/v1/zones/zone-new", nil); code != http.StatusNotFound {
		t.Errorf("zone-new created before the refusals (%d)", code)
	}
	apiFields[zoneKind.Schema] = fs

	// Without the pool's change the rest applies.
	out, _ := c.cli(strings.Replace(file, "type: server", "type: docker_agent", 1), exitOK, nil, "apply", "-f", "-")
	if !strings.Contains(out, "apply: 2 created, 1 changed, 1 unchanged, 0 deleted") {
		t.Errorf("apply:\n%s", out)
	}
}

// stageSession inserts a session of the staging config of zone-a and
// workspace ws, as the provisioner would have made it, on the agent (or
// the server: staged sessions are on agents, "" for none), with status and
// an optional user ("" for none).
func stageSession(t *testing.T, c *configService, ws, agent, server, status, user string) {
	t.Helper()
	if _, err := c.env.DB.ExecContext(context.Background(), `INSERT INTO sessions
			(id, workspace_id, zone_id, agent_id, server_id, staging_config_id, user_id, origin, status)
		SELECT $1, w.id, z.id, (SELECT id FROM agents WHERE name = $3), (SELECT id FROM servers WHERE name = $4), sc.id,
			(SELECT id FROM users WHERE username = $6), 'staged', $5
		FROM workspaces w, zones z, staging_configs sc
		WHERE w.name = $2 AND z.name = 'zone-a' AND sc.workspace_id = w.id AND sc.zone_id = z.id AND sc.deleted_at IS NULL`,
		uuid.NewString(), ws, agent, server, status, user); err != nil {
		t.Fatal(err)
	}
}

// TestPruneRefusesBeforeAnyDeletionAnAgentThatSessionsOfAKeptWorkspaceReferTo:
// the API keeps a session, ended or not, until its workspace is deleted,
// and refuses to delete an agent or zone one refers to. A prune that
// deletes a staging config and the agent its sessions were on, but keeps
// their workspace, is refused before it deletes anything (in a dry run
// too); when the workspace goes too, the prune deletes it first and then
// the agent.
func TestPruneRefusesBeforeAnyDeletionAnAgentThatSessionsOfAKeptWorkspaceReferTo(t *testing.T) {
	c := startConfigService(t)
	zone := "kind: zone\nname: zone-a\nallow_origin_domain: example.com\nupstream_auth_address: example.com\n---\n"
	agent := func(name string) string {
		return "kind: agent\nname: " + name + "\nzone: zone-a\ndocker_endpoint: unix:///var/run/docker.sock\ncores: 4\nmemory_mb: 4096\n---\n"
	}
	other := "kind: workspace\nname: other\nimage: example/other:1\n---\nkind: staging-config\nzone: zone-a\nworkspace: other\ndesired_sessions: 0\n"
	browser := "kind: workspace\nname: browser\nimage: example/browser:1\n---\n"
	c.cli(zone+agent("agent-1")+browser+other+"---\nkind: staging-config\nzone: zone-a\nworkspace: browser\ndesired_sessions: 2\n",
		exitOK, nil, "apply", "-f", "-")
	stageSession(t, c, "browser", "agent-1", "", "staged", "")
	stageSession(t, c, "browser", "agent-1", "", "destroyed", "")

	// agent-1 and the browser staging config go, the workspace stays.
	keep := zone + agent("agent-2") + browser + other
	for _, args := range [][]string{{"apply", "-f", "-", "--prune", "--dry-run"}, {"apply", "-f", "-", "--prune"}} {
		out, errOut := c.cli(keep, exitFailure, nil, args...)
		if !strings.Contains(errOut, "nothing was changed: --prune would delete agent/agent-1, which 2 session(s) of staging-config/zone-a/browser refer to") ||
			!strings.Contains(errOut, "workspace/browser") {
			t.Errorf("%v: stderr:\n%s", args, errOut)
		}
		if !strings.HasPrefix(out, "apply: 0 created, 0 changed, 0 unchanged, 0 deleted") {
			t.Errorf("%v: stdout:\n%s", args, out)
		}
	}
	var sc struct {
		Items []map[string]any `json:"items"`
	}
	c.get("/api/v1/staging-configs", &sc)
	if len(sc.Items) != 2 {
		t.Errorf("the refused prune deleted a staging config: %v", sc.Items)
	}
	if code := c.get("/api/v1/agents/agent-2", nil); code != http.StatusNotFound {
		t.Errorf("the refused prune created agent-2 (%d)", code)
	}

	// The workspace goes too: it is deleted (its ended sessions with it)
	// before the agent, once its staged session is destroyed.
	if _, err := c.env.DB.ExecContext(context.Background(), `UPDATE sessions SET status = 'destroyed'`); err != nil {
		t.Fatal(err)
	}
	out, errOut := c.cli(zone+agent("agent-2")+other, exitOK, nil, "apply", "-f", "-", "--prune")
	if !strings.Contains(out, "staging-config/zone-a/browser deleted\nworkspace/browser deleted\nagent/agent-1 deleted\n") {
		t.Errorf("prune:\n%s\nstderr:\n%s", out, errOut)
	}
	if code := c.get("/api/v1/agents/agent-1", nil); code != http.StatusNotFound {
		t.Errorf("agent-1 still there (%d)", code)
	}
}

// TestStagedLeftAsksOnlyForSessionsThatHaveNotEnded: the wait lists a
// staging config's sessions with ended=false, not its whole history, and
// counts those without a user: provisioning, staged and destroying ones,
// not assigned or ended ones.
func TestStagedLeftAsksOnlyForSessionsThatHaveNotEnded(t *testing.T) {
	c := startConfigService(t)
	c.cli("kind: zone\nname: zone-a\nallow_origin_domain: example.com\nupstream_auth_address: example.com\n---\n"+
		"kind: agent\nname: agent-1\nzone: zone-a\ndocker_endpoint: unix:///var/run/docker.sock\ncores: 4\nmemory_mb: 4096\n---\n"+
		"kind: group\nname: everyone\n---\nkind: user\nusername: carol\ngroups: [everyone]\n---\n"+
		"kind: workspace\nname: browser\nimage: example/browser:1\n---\nkind: staging-config\nzone: zone-a\nworkspace: browser\ndesired_sessions: 0\n",
		exitOK, nil, "apply", "-f", "-")
	for _, status := range []string{"provisioning", "staged", "destroying", "destroyed", "failed", "destroyed"} {
		stageSession(t, c, "browser", "agent-1", "", status, "")
	}
	stageSession(t, c, "browser", "agent-1", "", "running", "carol")
	stageSession(t, c, "browser", "agent-1", "", "assigning", "carol")

	var queries []string
	var mu sync.Mutex
	target := c.URL
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	api, err := newAPIClient(&globalOptions{APIURL: proxy.URL, AdminToken: c.token})
	if err != nil {
		t.Fatal(err)
	}
	var sc struct {
		Items []map[string]any `json:"items"`
	}
	c.get("/api/v1/staging-configs", &sc)
	id, _ := sc.Items[0]["id"].(string)
	left, err := stagedLeft(context.Background(), api, []string{id})
	if err != nil || left != 3 {
		t.Errorf("stagedLeft = %d, %v; want 3 (provisioning, staged, destroying)", left, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, q := range queries {
		if !strings.Contains(q, "ended=false") || !strings.Contains(q, "staging_config="+id) {
			t.Errorf("stagedLeft asked %s", q)
		}
	}
	if len(queries) != 1 {
		t.Errorf("queries: %v", queries)
	}
}

// TestGetWritesWholeNumbersAsIntegers: a million is written 1000000 by
// get -o yaml and -o json (not 1e+06), fractions stay, and the output
// applies back unchanged.
func TestGetWritesWholeNumbersAsIntegers(t *testing.T) {
	c := startConfigService(t)
	c.cli("kind: zone\nname: zone-a\n---\nkind: agent\nname: big\nzone: zone-a\ndocker_endpoint: unix:///var/run/docker.sock\n"+
		"cores: 1000000\nmemory_mb: 2000000000\n---\nkind: workspace\nname: w\nimage: example/w:1\ncores: 0.5\nmemory_mb: 1048576\n",
		exitOK, nil, "apply", "-f", "-")
	yamlOut, _ := c.cli("", exitOK, nil, "get", "all", "-o", "yaml")
	for _, want := range []string{"cores: 1000000\n", "memory_mb: 2000000000\n", "cores: 0.5\n", "memory_mb: 1048576\n"} {
		if !strings.Contains(yamlOut, want) {
			t.Errorf("get all -o yaml lacks %q:\n%s", want, yamlOut)
		}
	}
	jsonOut, _ := c.cli("", exitOK, nil, "get", "all", "-o", "json")
	for _, want := range []string{`"cores": 1000000,`, `"memory_mb": 2000000000,`, `"cores": 0.5,`} {
		if !strings.Contains(jsonOut, want) {
			t.Errorf("get all -o json lacks %q:\n%s", want, jsonOut)
		}
	}
	if strings.Contains(yamlOut+jsonOut, "e+") {
		t.Errorf("an exponent in the output:\n%s\n%s", yamlOut, jsonOut)
	}
	out, _ := c.cli(yamlOut, exitOK, nil, "apply", "-f", "-")
	if !strings.Contains(out, "apply: 0 created, 0 changed, 3 unchanged, 0 deleted") {
		t.Errorf("the output applied back:\n%s", out)
	}
	if v := documentValue(map[string]any{"n": []any{1e6, 2.5, -3.0, 1e300}}); fmt.Sprint(v) != "map[n:[1000000 2.5 -3 1e+300]]" {
		t.Errorf("documentValue = %v", v)
	}
}
