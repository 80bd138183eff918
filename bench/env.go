package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	assigner "github.com/greenroom-dev/greenroom/services/assigner/service"
	configsvc "github.com/greenroom-dev/greenroom/services/config/service"
	expiry "github.com/greenroom-dev/greenroom/services/expiry/service"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	provisioner "github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// env is one benchmark environment: a fresh PostgreSQL database on the
// local server, an embedded JetStream server on loopback, and the services
// asked for, all in this process. close undoes everything it made,
// containers included.
type env struct {
	DB     *sqlx.DB
	DBURL  string
	NATS   *server.Server
	Deps   *app.Deps // the config service's connections
	API    *httptest.Server
	apiURL string // of the in-process API, or of a config service run as a process
	Token  string
	Label  string // every container made carries greenroom.bench=<Label>
	// NatsURL is the JetStream server's client URL.
	NatsURL string
	// Zone and User are the bench fixture's zone and user; prefix starts
	// the names of everything the bench creates (empty in a private
	// environment).
	Zone, User, prefix string
	// running is set when the bench measures a running deployment: what it
	// creates there (created, sessions) is deleted through the API at the
	// end.
	running  bool
	mu       sync.Mutex
	created  []string // API paths of the staging configs created
	sessions []string
	log      *zap.Logger
	// execs has the provisioner's own timing of each assign exec.
	execs  *execLog
	undo   []func()
	cancel []func()
}

// envMode says which services run in-process.
type envMode int

const (
	envBare   envMode = iota // PostgreSQL database + NATS only
	envAssign                // + config + assigner
	envFull                  // + provisioner + expiry
)

// startEnv starts a PostgreSQL database, NATS and the services of mode.
// Against a running deployment (target) it returns an env on that
// deployment instead, whatever the mode.
func startEnv(mode envMode) (e *env, err error) {
	if target != nil {
		return startRunning(*target)
	}
	e = &env{Token: "bench-" + uuid.NewString(), Label: uuid.NewString(), log: zap.NewNop(), Zone: "zone-a", User: "bench"}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Database: the dbtest recipe, without a testing.TB.
	admin, err := db.Open(ctx, dbtest.AdminURL(), 10*time.Second)
	if err != nil {
		return e, fmt.Errorf("PostgreSQL is required (scripts/ensure-postgres.sh or GREENROOM_TEST_DATABASE_URL): %w", err)
	}
	name := "greenroom_bench_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		_ = admin.Close()
		return e, fmt.Errorf("creating database: %w", err)
	}
	e.undo = append(e.undo, func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(c, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: dropping %s: %v\n", name, err)
		}
		_ = admin.Close()
	})
	u, err := url.Parse(dbtest.AdminURL())
	if err != nil {
		return e, err
	}
	u.Path = "/" + name
	e.DBURL = u.String()
	if e.DB, err = db.Open(ctx, e.DBURL, 10*time.Second); err != nil {
		return e, err
	}
	e.undo = append(e.undo, func() { _ = e.DB.Close() })
	if _, err := db.Migrate(ctx, e.DB.DB); err != nil {
		return e, fmt.Errorf("migrating: %w", err)
	}

	// JetStream on loopback, store in a temporary directory.
	dir, err := os.MkdirTemp("", "greenroom-bench-nats-")
	if err != nil {
		return e, err
	}
	e.undo = append(e.undo, func() { _ = os.RemoveAll(dir) })
	e.NATS, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		return e, err
	}
	go e.NATS.Start()
	if !e.NATS.ReadyForConnections(10 * time.Second) {
		return e, fmt.Errorf("nats-server not ready")
	}
	e.NatsURL = e.NATS.ClientURL()
	e.undo = append(e.undo, func() { e.NATS.Shutdown(); e.NATS.WaitForShutdown() })
	e.undo = append(e.undo, func() { removeContainers("greenroom.bench=" + e.Label) })
	if mode == envBare {
		return e, nil
	}

	e.Deps, err = e.connect(ctx, "config")
	if err != nil {
		return e, err
	}
	cfg, err := configsvc.New(e.Deps, configsvc.Config{AdminToken: e.Token})
	if err != nil {
		return e, err
	}
	if err := e.start(cfg); err != nil {
		return e, err
	}
	e.API = httptest.NewServer(cfg.Handler())
	e.apiURL = e.API.URL
	e.undo = append(e.undo, e.API.Close)

	if err := e.addAssigner(ctx); err != nil {
		return e, err
	}
	if mode != envFull {
		return e, nil
	}
	pd, err := e.connect(ctx, "provisioner")
	if err != nil {
		return e, err
	}
	prov, err := provisioner.New(pd, provisioner.Config{
		Provision: command.Config{ReadinessTimeout: 30 * time.Second, ExtraLabels: map[string]string{"greenroom.bench": e.Label}},
	})
	if err != nil {
		return e, err
	}
	if err := e.start(prov); err != nil {
		return e, err
	}
	xd, err := e.connect(ctx, "expiry")
	if err != nil {
		return e, err
	}
	exp, err := expiry.New(xd, expiry.Config{Sweeper: expiry.SweeperConfig{Interval: time.Second}})
	if err != nil {
		return e, err
	}
	if err := e.start(exp); err != nil {
		return e, err
	}
	return e, nil
}

// addAssigner starts one more assigner replica, with its own connections
// (and outbox relay), as a scaled-out deployment has.
func (e *env) addAssigner(ctx context.Context) error {
	ad, err := e.connect(ctx, "assigner")
	if err != nil {
		return err
	}
	asg, err := assigner.New(ad, assigner.Config{Concurrency: concurrency})
	if err != nil {
		return err
	}
	return e.start(asg)
}

func (e *env) connect(ctx context.Context, name string) (*app.Deps, error) {
	s := settings.Common{DatabaseURL: e.DBURL, NatsURL: e.NatsURL, HTTPAddr: "127.0.0.1:0",
		AdminToken: e.Token, LogLevel: "warn", StreamReplicas: 1, ShutdownTimeout: 10 * time.Second}
	log := e.log
	if name == "provisioner" {
		if e.execs == nil {
			e.execs = newExecLog()
		}
		log = zap.New(zapcore.NewTee(e.log.Core(), e.execs.core()))
	}
	d, err := app.Connect(ctx, name, s, log.With(zap.String("service", name)), 20*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connecting %s: %w", name, err)
	}
	e.undo = append(e.undo, d.Close)
	return d, nil
}

// start starts svc; close stops it (bounded).
func (e *env) start(svc startstop.Service) error {
	if err := svc.Start(context.Background()); err != nil {
		return err
	}
	e.cancel = append(e.cancel, func() {
		if err := startstop.StopWithin(30*time.Second, startstop.Part{Name: fmt.Sprintf("%T", svc), Service: svc}); err != nil {
			fmt.Fprintf(os.Stderr, "bench: stopping a service: %v\n", err)
		}
	})
	return nil
}

// stopServices stops the services (newest first), leaving PostgreSQL and
// NATS up.
func (e *env) stopServices() {
	for i := len(e.cancel) - 1; i >= 0; i-- {
		e.cancel[i]()
	}
	e.cancel = nil
}

// close stops the services, then undoes the rest in reverse.
func (e *env) close() {
	e.stopServices()
	for i := len(e.undo) - 1; i >= 0; i-- {
		e.undo[i]()
	}
}

func removeContainers(label string) {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: listing containers %s: %v\n", label, err)
		return
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return
	}
	if out, err := exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: removing containers: %v: %s\n", err, out)
	}
}

// apiClient keeps connections to the admin API open for reuse, as many as
// the load generator has requests in flight (the default keeps 2, so at
// hundreds per second every request would open a new connection).
var apiClient = &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{
	Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}}

// call sends a JSON request to the admin API and decodes the answer.
func (e *env) call(method, path string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.apiURL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("%s %s: %d, undecodable %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out, nil
}

// create POSTs a resource and returns its id.
func (e *env) create(path string, body map[string]any) (string, error) {
	status, out, err := e.call(http.MethodPost, path, body)
	if err != nil {
		return "", err
	}
	if status == http.StatusConflict && e.running {
		return e.reuse(path, body)
	}
	if status != http.StatusCreated {
		return "", fmt.Errorf("POST %s: %d %v", path, status, out)
	}
	id, _ := out["id"].(string)
	if e.running && path == "/api/v1/staging-configs" {
		e.mu.Lock()
		e.created = append(e.created, path+"/"+id)
		e.mu.Unlock()
	}
	return id, nil
}

// staged returns the current staged count of a staging config.
func (e *env) staged(id string) int {
	_, sc, err := e.call(http.MethodGet, "/api/v1/staging-configs/"+id, nil)
	if err != nil {
		return -1
	}
	n, _ := sc["current_sessions"].(float64)
	return int(n)
}

// waitStaged polls until the staging config has want staged, or timeout
// (or interrupt).
func (e *env) waitStaged(id string, want int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout && !interrupted() {
		if e.staged(id) == want {
			return time.Since(start), nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("staging config %s not at %d staged within %s (at %d)", id, want, timeout, e.staged(id))
}

var permissions = []string{"allow_audio", "allow_clipboard_down", "allow_clipboard_up", "allow_downloads",
	"allow_microphone", "allow_uploads", "allow_gamepad"}

// madeSession records a session the bench was given, to be destroyed at
// the end in a running deployment (in a private one, dropping the database
// and removing the containers does it).
func (e *env) madeSession(id string) {
	if id != "" && e.running {
		e.mu.Lock()
		e.sessions = append(e.sessions, id)
		e.mu.Unlock()
	}
}

// name is the name of a thing the bench creates.
func (e *env) name(s string) string { return e.prefix + s }

// fixture creates a zone, an agent, a group with every permission and the
// bench user; it returns the ids of the zone and the agent.
func (e *env) fixture() (zoneID, agentID string, err error) {
	if zoneID, err = e.create("/api/v1/zones", map[string]any{"name": e.Zone, "search_alternate_zones": false, "priority": 1,
		"allow_origin_domain": "greenroom.test", "upstream_auth_address": "greenroom.test"}); err != nil {
		return
	}
	if agentID, err = e.create("/api/v1/agents", map[string]any{"name": e.name("agent"), "zone": e.Zone,
		"docker_endpoint": "unix:///var/run/docker.sock", "cores": 64, "memory_mb": 65536}); err != nil {
		return
	}
	g := map[string]any{"name": e.name("everyone"), "priority": 100}
	for _, p := range permissions {
		g[p] = true
	}
	if _, err = e.create("/api/v1/groups", g); err != nil {
		return
	}
	_, err = e.create("/api/v1/users", map[string]any{"username": e.User, "groups": []string{e.name("everyone")}})
	return
}

// workspace returns a demo workspace body with the assign exec and the
// image's default init delay.
func (e *env) workspace(name string) map[string]any {
	return map[string]any{
		"name": e.name(name), "image": demoImage, "cores": 0.1, "memory_mb": 64, "port": 8080, "readiness_path": "/healthz",
		"docker_exec_config": map[string]any{"assign": map[string]any{"cmd": []string{"/demo-workspace", "assign"}, "user": "root"}},
	}
}

// stagingConfig returns a staging config body for workspace ws in the
// bench zone, with every permission.
func (e *env) stagingConfig(ws string, desired int) map[string]any {
	sc := map[string]any{"zone": e.Zone, "workspace": e.name(ws), "desired_sessions": desired, "expiration_hours": 24}
	for _, p := range permissions {
		sc[p] = true
	}
	return sc
}
