package chaos

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq" // database/sql driver

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/nettest"
)

// proc is one child process: a service replica or nats-server. It can be
// started again after it exits (a supervisor's restart).
type proc struct {
	name string
	path string
	args []string
	env  []string
	log  string              // file its stdout and stderr are appended to
	cred *syscall.Credential // run as this user (nil: as this program)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current run exits
	err  error         // the current run's exit error, once done
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("%s is already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\n=== chaos: starting %s at %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, and SIGKILL if this program dies first, so
	// that no child outlives a chaos run killed without its cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		_ = f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// running reports whether the current run has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.done)
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// signal sends sig to the process (not its group: a service has no children).
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.done) {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// wait waits up to timeout for the current run to exit and returns its
// exit error; ok is false on timeout.
func (p *proc) wait(timeout time.Duration) (err error, ok bool) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return nil, true
	}
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// kill9 sends SIGKILL (to a stopped process too) and waits for the exit.
func (p *proc) kill9() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || isClosed(done) {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// stop asks for a graceful stop (SIGCONT first, in case it is stopped),
// then kills it after grace.
func (p *proc) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	_ = p.signal(syscall.SIGCONT)
	_ = p.signal(syscall.SIGTERM)
	if _, ok := p.wait(grace); !ok {
		p.kill9()
	}
}

// serviceNames are the services, in start order.
var serviceNames = []string{"config", "assigner", "provisioner", "expiry", "gateway"}

// cluster is one Greenroom deployment made of processes on loopback: its own
// nats-server, a fresh database on the local PostgreSQL, and replicas of
// every service.
type cluster struct {
	opts    Options
	logf    func(string, ...any)
	repo    string // repository root
	workDir string // binaries, logs, the NATS store
	bin     string

	natsPort, natsMonitor int
	nats                  *proc

	adminURL, dbName, dbURL string
	db                      *sql.DB
	deploymentID            string

	token     string
	replicas  map[string][]*proc // service → replicas
	addrs     map[string][]string
	blackhole *nettest.BlackHole
	// gate is assigner-0's link to nats-server (kill9AssignerAfterCommit
	// holds it); assigner-0's database connections carry the
	// application_name assigner0App.
	gate *gate
	// pg is the run's own PostgreSQL server, when a fault restarts it;
	// nil means the machine's (libs/dbtest's AdminURL).
	pg *privatePG
}

// repoRoot finds the repository root (the directory with go.work) from the
// working directory upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("chaos: no go.work found above the working directory; run it inside the repository")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// build compiles the five services and nats-server (the version of the
// repository's go.mod files, so that a bump there is what is tested), and
// the demo workspace image.
func (c *cluster) build(ctx context.Context) error {
	c.bin = filepath.Join(c.workDir, "bin")
	args := []string{"build", "-o", c.bin + string(filepath.Separator)}
	for _, s := range serviceNames {
		args = append(args, "./services/"+s)
	}
	if err := c.run(ctx, c.repo, "go", args...); err != nil {
		return err
	}
	// Built in the e2e module, which requires nats-server (through libs).
	if err := c.run(ctx, filepath.Join(c.repo, "tests", "e2e"), "go", "build", "-o",
		filepath.Join(c.bin, "nats-server"), "github.com/nats-io/nats-server/v2"); err != nil {
		return err
	}
	return c.run(ctx, c.repo, "bash", "scripts/build-demo-image.sh")
}

func (c *cluster) run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// startNATS starts (or restarts, on the same port and store) nats-server
// and waits until JetStream answers.
func (c *cluster) startNATS(ctx context.Context) error {
	if c.nats == nil {
		var err error
		if c.natsPort, err = freePort(); err != nil {
			return err
		}
		if c.natsMonitor, err = freePort(); err != nil {
			return err
		}
		store := filepath.Join(c.workDir, "nats")
		c.nats = &proc{
			name: "nats-server", path: filepath.Join(c.bin, "nats-server"),
			args: []string{"-js", "-sd", store, "-a", "127.0.0.1", "-p", fmt.Sprint(c.natsPort),
				"-m", fmt.Sprint(c.natsMonitor)},
			env: os.Environ(), log: filepath.Join(c.workDir, "logs", "nats-server.log"),
		}
	}
	if err := c.nats.start(); err != nil {
		return err
	}
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", c.natsMonitor)
	return poll(ctx, 30*time.Second, "nats-server with JetStream", func() bool {
		return httpOK(health)
	})
}

func (c *cluster) natsURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", c.natsPort) }

func httpOK(u string) bool {
	cl := http.Client{Timeout: 2 * time.Second}
	res, err := cl.Get(u)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// poll calls ok every 200 ms until it is true, ctx ends or timeout passes.
func poll(ctx context.Context, timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// createDatabase makes a fresh, migrated database on the local PostgreSQL
// (the server of libs/dbtest: GREENROOM_TEST_DATABASE_URL, else
// .run/database-url).
func (c *cluster) createDatabase(ctx context.Context) error {
	c.adminURL = dbtest.AdminURL()
	if c.pg != nil {
		c.adminURL = c.pg.url()
	}
	admin, err := sql.Open("postgres", c.adminURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	c.dbName = "greenroom_chaos_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+c.dbName); err != nil {
		c.dbName = ""
		return fmt.Errorf("creating the database (PostgreSQL is needed: scripts/ensure-postgres.sh): %w", err)
	}
	u, err := url.Parse(c.adminURL)
	if err != nil {
		return err
	}
	u.Path = "/" + c.dbName
	c.dbURL = u.String()
	conn, err := db.Open(ctx, c.dbURL, 10*time.Second)
	if err != nil {
		return err
	}
	if _, err := db.Migrate(ctx, conn.DB); err != nil {
		_ = conn.Close()
		return fmt.Errorf("migrating: %w", err)
	}
	c.db = conn.DB
	return c.db.QueryRowContext(ctx, `SELECT id FROM deployment`).Scan(&c.deploymentID)
}

func (c *cluster) dropDatabase() {
	if c.db != nil {
		_ = c.db.Close()
	}
	if c.dbName == "" {
		return
	}
	admin, err := sql.Open("postgres", c.adminURL)
	if err != nil {
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+c.dbName+" WITH (FORCE)"); err != nil {
		c.logf("dropping database %s: %v", c.dbName, err)
	}
}

// replicaCount is how many replicas of a service run: 3 assigners, 2 of
// every other service.
func replicaCount(svc string) int {
	if svc == "assigner" {
		return 3
	}
	return 2
}

// startServices starts every replica and waits for each /readyz.
func (c *cluster) startServices(ctx context.Context) error {
	c.replicas = map[string][]*proc{}
	c.addrs = map[string][]string{}
	for _, svc := range serviceNames {
		for i := range replicaCount(svc) {
			port, err := freePort()
			if err != nil {
				return err
			}
			c.addrs[svc] = append(c.addrs[svc], fmt.Sprintf("127.0.0.1:%d", port))
			_ = i
		}
	}
	common := append(os.Environ(),
		"GREENROOM_DATABASE_URL="+c.dbURL,
		"GREENROOM_NATS_URL="+c.natsURL(),
		"GREENROOM_ADMIN_TOKEN="+c.token,
		"GREENROOM_LOG_LEVEL=info",
		"GREENROOM_SHUTDOWN_TIMEOUT=20s",
		// Timers short enough that a phase settles in about a minute.
		"GREENROOM_EXPIRY_INTERVAL=1s",
		"GREENROOM_READINESS_TIMEOUT=20s",
		"GREENROOM_PROVISIONING_TIMEOUT=45s",
		"GREENROOM_ASSIGNING_TIMEOUT=45s",
		"GREENROOM_DESTROYING_TIMEOUT=20s",
		"GREENROOM_CONTAINER_AUDIT_INTERVAL=5s",
		"GREENROOM_RECONCILE_INTERVAL=2s",
		"GREENROOM_GATEWAY_URL=http://"+c.addrs["gateway"][0],
		"GREENROOM_GATEWAY_AUTH_URL=http://"+c.addrs["config"][0],
	)
	var err error
	if c.gate, err = listenGate(fmt.Sprintf("127.0.0.1:%d", c.natsPort)); err != nil {
		return err
	}
	for _, svc := range serviceNames {
		for i, addr := range c.addrs[svc] {
			env := append([]string{}, common...)
			if svc == "assigner" && i == 0 {
				// The last value of a variable wins (os/exec).
				env = append(env, "GREENROOM_NATS_URL=nats://"+c.gate.addr(),
					"GREENROOM_DATABASE_URL="+withParam(c.dbURL, "application_name", assigner0App))
			}
			if svc == "gateway" {
				env = append(env, "GREENROOM_GATEWAY_ADDR="+addr)
				// Its /metrics etc. are on the gateway address; keep the
				// HTTP address off the defaults of a running make up.
				env = append(env, "GREENROOM_HTTP_ADDR=127.0.0.1:0")
			} else {
				env = append(env, "GREENROOM_HTTP_ADDR="+addr)
			}
			name := fmt.Sprintf("%s-%d", svc, i)
			p := &proc{name: name, path: filepath.Join(c.bin, svc), env: env,
				log: filepath.Join(c.workDir, "logs", name+".log")}
			c.replicas[svc] = append(c.replicas[svc], p)
			if err := p.start(); err != nil {
				return err
			}
		}
	}
	for _, svc := range serviceNames {
		for i := range c.replicas[svc] {
			if err := c.waitReady(ctx, svc, i, 90*time.Second); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *cluster) waitReady(ctx context.Context, svc string, i int, timeout time.Duration) error {
	p := c.replicas[svc][i]
	return poll(ctx, timeout, p.name+" /readyz", func() bool {
		return p.running() && httpOK("http://"+c.addrs[svc][i]+"/readyz")
	})
}

// restart starts a replica that exited and waits until it is ready.
func (c *cluster) restart(ctx context.Context, svc string, i int) error {
	if err := c.replicas[svc][i].start(); err != nil {
		return err
	}
	return c.waitReady(ctx, svc, i, 60*time.Second)
}

// apiURL is the admin API of config replica i.
func (c *cluster) apiURL(i int) string {
	return "http://" + c.addrs["config"][i%len(c.addrs["config"])]
}

// api sends a JSON request to a config replica; out may be nil.
func (c *cluster) api(ctx context.Context, replica int, method, path string, body, out any) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.apiURL(replica)+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if out != nil && len(raw) > 0 && res.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.StatusCode, res.Header, fmt.Errorf("%s %s: %d, undecodable %q", method, path, res.StatusCode, raw)
		}
	}
	if res.StatusCode >= 400 {
		return res.StatusCode, res.Header, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(raw))
	}
	return res.StatusCode, res.Header, nil
}

// The configuration a run loads.
const (
	zoneName    = "chaos-a"
	workspace   = "demo"
	demoImage   = "greenroom/demo-workspace:latest"
	userPrefix  = "chaos-user-"
	users       = 4
	agentName   = "chaos-agent"
	blackholeAg = "chaos-blackhole"
)

// loadConfig creates a zone, an agent on the local Docker engine, the demo
// workspace, a group with users and a staging config, and waits until the
// pool is full.
func (c *cluster) loadConfig(ctx context.Context) error {
	auth := c.addrs["config"][0]
	steps := []struct {
		path string
		body map[string]any
	}{
		{"/api/v1/zones", map[string]any{"name": zoneName, "search_alternate_zones": false,
			"allow_origin_domain": "greenroom.localhost", "upstream_auth_address": auth,
			"load_balancing": "least_load", "priority": 1}},
		{"/api/v1/agents", map[string]any{"name": agentName, "zone": zoneName,
			"docker_endpoint": "unix:///var/run/docker.sock", "cores": 64, "memory_mb": 65536, "enabled": true}},
		{"/api/v1/workspaces", map[string]any{"name": workspace, "image": demoImage, "cores": 0.25,
			"memory_mb": 128, "enabled": true, "port": 8080, "readiness_path": "/healthz",
			"assign_hook": map[string]any{"path": "/.greenroom/assign", "timeout": "5s"},
			"docker_exec_config": map[string]any{"assign": map[string]any{
				"cmd": []string{"/demo-workspace", "assign"}, "user": "0"}}}},
		{"/api/v1/groups", map[string]any{"name": "chaos-everyone", "priority": 100}},
	}
	for i := range users {
		steps = append(steps, struct {
			path string
			body map[string]any
		}{"/api/v1/users", map[string]any{"username": fmt.Sprintf("%s%d", userPrefix, i), "groups": []string{"chaos-everyone"}}})
	}
	steps = append(steps, struct {
		path string
		body map[string]any
	}{"/api/v1/staging-configs", map[string]any{"zone": zoneName, "workspace": workspace,
		"desired_sessions": c.opts.Staged, "expiration_hours": 1}})
	for _, s := range steps {
		if _, _, err := c.api(ctx, 0, http.MethodPost, s.path, s.body, nil); err != nil {
			return fmt.Errorf("loading the configuration: %w", err)
		}
	}
	return poll(ctx, 120*time.Second, fmt.Sprintf("%d staged sessions", c.opts.Staged), func() bool {
		var n int
		_ = c.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE status = 'staged'`).Scan(&n)
		return n >= c.opts.Staged
	})
}

// containers lists this deployment's containers: id → session label and state.
type container struct {
	ID, Session, State string
}

func (c *cluster) containers(ctx context.Context) ([]container, error) {
	cmd := exec.CommandContext(ctx, "docker", "ps", "-a", "--no-trunc",
		"--filter", "label=greenroom.deployment="+c.deploymentID,
		"--format", `{{.ID}} {{.Label "greenroom.session"}} {{.State}}`)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("docker ps: %w", err)
	}
	var cs []container
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			cs = append(cs, container{ID: f[0], Session: f[1], State: f[2]})
		} else if len(f) == 2 {
			cs = append(cs, container{ID: f[0], State: f[1]})
		}
	}
	return cs, nil
}

// removeContainers removes every container of this deployment.
func (c *cluster) removeContainers() {
	if c.deploymentID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := c.containers(ctx)
	if err != nil {
		c.logf("cleanup: %v", err)
		return
	}
	if len(cs) == 0 {
		return
	}
	args := []string{"rm", "-f"}
	for _, ct := range cs {
		args = append(args, ct.ID)
	}
	if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
		c.logf("cleanup: docker rm: %v: %s", err, out)
	}
}

// close stops everything the run started: services, nats-server, the
// black-hole listener, containers, the database. Safe to call more than once.
func (c *cluster) close() {
	var wg sync.WaitGroup
	for _, rs := range c.replicas {
		for _, p := range rs {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop(10 * time.Second) }()
		}
	}
	wg.Wait()
	if c.nats != nil {
		c.nats.stop(5 * time.Second)
	}
	if c.blackhole != nil {
		_ = c.blackhole.Close()
	}
	if c.gate != nil {
		_ = c.gate.Close()
	}
	c.removeContainers()
	c.dropDatabase()
	c.pg.stop()
}

// assigner0App is the application_name of assigner-0's database
// connections, by which the precise kills find its transactions.
const assigner0App = "chaos-assigner-0"

// withParam adds a query parameter to a URL.
func withParam(raw, key, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// backends counts the server processes of application app matching the
// pg_stat_activity condition cond.
func (c *cluster) backends(ctx context.Context, app, cond string) int {
	var n int
	_ = c.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND `+cond, app).Scan(&n)
	return n
}
