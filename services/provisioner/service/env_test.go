package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/apptest"
	libbus "github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
	"github.com/greenroom-dev/greenroom/services/provisioner/ports/bus"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// demoImage is built once for the package by TestMain.
const demoImage = "greenroom/demo-workspace:latest"

// testLabel marks every container a test makes, so its cleanup removes
// exactly those.
const testLabel = "greenroom.test"

func TestMain(m *testing.M) {
	// The demo image is built from source (nothing is pulled); the
	// engine's layer cache makes an unchanged rebuild take a moment.
	cmd := exec.Command("bash", "../../../scripts/build-demo-image.sh")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building the demo image (Docker is required): %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// dockerEndpoint is the local engine, as an agent's docker_endpoint.
func dockerEndpoint() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return client.DefaultDockerHost
}

// env is one test's provisioner with its own database, JetStream server
// and container label.
type env struct {
	t      testing.TB
	ctx    context.Context
	db     *sqlx.DB
	dbURL  string
	deps   *app.Deps
	svc    *service.Service
	docker *client.Client
	label  string

	mu     sync.Mutex
	events []events.Event
	// requestIDs holds the Greenroom-Request-Id header of each event, by id.
	requestIDs map[string]string
}

type envOptions struct {
	cfg service.Config
	// noService leaves the provisioner stopped (store-level tests).
	noService bool
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, ctx: ctx, label: uuid.NewString(), requestIDs: map[string]string{}}
	e.db, e.dbURL = dbtest.New(t)
	srv := natstest.Start(t)

	var err error
	e.docker, err = client.New(client.WithHost(dockerEndpoint()))
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	// Registered before the service starts, so it runs after it stopped.
	t.Cleanup(func() { e.removeTestContainers(); _ = e.docker.Close() })

	level := zapcore.WarnLevel
	if l := os.Getenv("GREENROOM_TEST_LOG"); l != "" {
		_ = level.Set(l)
	}
	log := zaptest.NewLogger(t, zaptest.Level(level))
	e.deps, err = app.Connect(ctx, "provisioner", settings.Common{
		DatabaseURL: e.dbURL, NatsURL: srv.ClientURL(), StreamReplicas: 1, ShutdownTimeout: 30 * time.Second,
	}, log, 10*time.Second)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(e.deps.Close)

	// Every event on the bus is recorded, so tests can wait for outcomes.
	sub, err := e.deps.NC.Subscribe("greenroom.>", func(m *nats.Msg) {
		ev, err := events.Decode(m.Data)
		if err != nil {
			t.Errorf("undecodable event on %s: %v", m.Subject, err)
			return
		}
		e.mu.Lock()
		e.events = append(e.events, ev)
		e.requestIDs[ev.ID] = m.Header.Get(events.HeaderRequestID)
		e.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	// The events tests write as other services (requestOnDemand,
	// claimStaged, emit) are published by those services' relays, as in
	// a deployment: a relay publishes only its own service's rows.
	for _, source := range []string{"greenroom/assigner", "greenroom/expiry", "greenroom/test"} {
		relay := outbox.NewRelay(outbox.RelayConfig{DatabaseURL: e.dbURL, Source: source}, e.db, e.deps.Publisher, log)
		if err := relay.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(relay.Stop)
	}

	if opts.cfg.Provision.ExtraLabels == nil {
		opts.cfg.Provision.ExtraLabels = map[string]string{}
	}
	opts.cfg.Provision.ExtraLabels[testLabel] = e.label
	opts.cfg.Provision.ReadinessTimeout = max(opts.cfg.Provision.ReadinessTimeout, 20*time.Second)
	if opts.cfg.Reconciler.Interval == 0 {
		opts.cfg.Reconciler.Interval = time.Hour // passes run on triggers; the tick is a safety net
	}
	e.svc, err = service.New(e.deps, opts.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Reconciler.TestSignals.Init()
	e.svc.ContainerAuditor.TestSignals.Init()
	if opts.noService {
		t.Cleanup(cancel)
		return e
	}
	if err := e.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		e.svc.Stop()
		if err := e.svc.Err(); err != nil {
			t.Errorf("provisioner stopped with: %v", err)
		}
	})
	return e
}

// removeTestContainers removes every container the test made.
func (e *env) removeTestContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	list, err := e.docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.
		Add("label", domain.LabelManaged+"=true", testLabel+"="+e.label)})
	if err != nil {
		e.t.Errorf("listing test containers: %v", err)
		return
	}
	for _, c := range list.Items {
		if _, err := e.docker.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			e.t.Errorf("removing test container %s: %v", c.ID[:12], err)
		}
	}
}

// containers lists the test's containers carrying extra labels.
func (e *env) containers(labels map[string]string) []container.Summary {
	e.t.Helper()
	f := client.Filters{}.Add("label", testLabel+"="+e.label)
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	list, err := e.docker.ContainerList(e.ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Fatalf("listing containers: %v", err)
	}
	return list.Items
}

// inspect is the engine's inspect of a container.
func (e *env) inspect(id string) (container.InspectResponse, error) {
	res, err := e.docker.ContainerInspect(e.ctx, id, client.ContainerInspectOptions{})
	return res.Container, err
}

// waitFor polls cond until it holds or the deadline passes.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCounter waits until counter name with labels reads want: a metric
// is counted after the outcome it counts is announced (the committer
// publishes its events right after the commit), so a test that saw the
// event may still be ahead of the count.
func (e *env) waitCounter(name string, labels map[string]string, want float64) {
	e.t.Helper()
	var n float64
	deadline := time.Now().Add(10 * time.Second)
	for n = e.counter(name, labels); n != want; n = e.counter(name, labels) {
		if time.Now().After(deadline) {
			e.t.Errorf("%s%v = %v, want %v", name, labels, n, want)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvent waits for an event of type eventType whose data matches, and
// checks it against its schema.
func (e *env) waitEvent(eventType string, timeout time.Duration, match func(data map[string]any) bool) events.Event {
	e.t.Helper()
	var found events.Event
	e.waitFor(eventType, timeout, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, ev := range e.events {
			if ev.Type != eventType {
				continue
			}
			var data map[string]any
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				e.t.Fatalf("event data: %v", err)
			}
			if match == nil || match(data) {
				found = ev
				return true
			}
		}
		return false
	})
	if err := e.deps.Validator.ValidateEvent(found); err != nil {
		e.t.Errorf("%s does not match its schema: %v", eventType, err)
	}
	return found
}

// countEvents counts recorded events of a type whose data matches.
func (e *env) countEvents(eventType string, match func(data map[string]any) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		var data map[string]any
		_ = json.Unmarshal(ev.Data, &data)
		if ev.Type == eventType && (match == nil || match(data)) {
			n++
		}
	}
	return n
}

func dataIs(key, value string) func(map[string]any) bool {
	return func(d map[string]any) bool { return d[key] == value }
}

func decode[T any](t testing.TB, ev events.Event) T {
	t.Helper()
	var v T
	if err := ev.DecodeData(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// fixture is a zone with one agent on the local engine, a workspace of the
// demo image and a user.
type fixture struct {
	zoneID, zone        string
	agentID, agent      string
	workspaceID, wsName string
	userID, user        string
}

type workspaceOptions struct {
	image         string
	cores         float64
	memoryMB      int
	readinessPath *string
	initDelay     string
	execConfig    string
	enabled       *bool
}

func (e *env) exec(query string, args ...any) {
	e.t.Helper()
	if _, err := e.db.ExecContext(e.ctx, query, args...); err != nil {
		e.t.Fatalf("%s: %v", strings.Fields(query)[0:3], err)
	}
}

func (e *env) addZone(name, loadBalancing string) string {
	id := uuid.NewString()
	e.exec(`INSERT INTO zones (id, name, load_balancing) VALUES ($1, $2, $3)`, id, name, loadBalancing)
	return id
}

func (e *env) addAgent(zoneID, name string, cores float64, memoryMB int) string {
	id := uuid.NewString()
	e.exec(`INSERT INTO agents (id, name, zone_id, docker_endpoint, cores, memory_mb) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, name, zoneID, dockerEndpoint(), cores, memoryMB)
	return id
}

func (e *env) addWorkspace(name string, o workspaceOptions) string {
	id := uuid.NewString()
	if o.image == "" {
		o.image = demoImage
	}
	if o.cores == 0 {
		o.cores = 0.5
	}
	if o.memoryMB == 0 {
		o.memoryMB = 64
	}
	path := "/healthz"
	if o.readinessPath != nil {
		path = *o.readinessPath
	}
	if o.initDelay == "" {
		o.initDelay = "300ms"
	}
	if o.execConfig == "" {
		o.execConfig = `{"assign": {"cmd": "/demo-workspace assign --user {username} --user-id {user_id}"}}`
	}
	enabled := true
	if o.enabled != nil {
		enabled = *o.enabled
	}
	runConfig := fmt.Sprintf(`{"environment": {"GREENROOM_DEMO_INIT_DELAY": %q}}`, o.initDelay)
	e.exec(`INSERT INTO workspaces (id, name, image, cores, memory_mb, enabled, port, readiness_path, run_config, docker_exec_config)
		VALUES ($1, $2, $3, $4, $5, $6, 8080, $7, $8, $9)`, id, name, o.image, o.cores, o.memoryMB, enabled, path, runConfig, o.execConfig)
	return id
}

func (e *env) addUser(name string) string {
	id := uuid.NewString()
	e.exec(`INSERT INTO users (id, username) VALUES ($1, $2)`, id, name)
	return id
}

func (e *env) standardFixture(ws workspaceOptions) fixture {
	f := fixture{zone: "zone-a", agent: "agent-a1", wsName: "demo", user: "alice"}
	f.zoneID = e.addZone(f.zone, "least_load")
	f.agentID = e.addAgent(f.zoneID, f.agent, 4, 4096)
	f.workspaceID = e.addWorkspace(f.wsName, ws)
	f.userID = e.addUser(f.user)
	return f
}

func (e *env) addStagingConfig(f fixture, desired int, perms events.Permissions) string {
	id := uuid.NewString()
	e.exec(`INSERT INTO staging_configs (id, zone_id, workspace_id, desired_sessions, expiration_hours,
			allow_audio, allow_clipboard_down, allow_clipboard_up, allow_downloads, allow_microphone, allow_uploads, allow_gamepad)
		VALUES ($1, $2, $3, $4, 2, $5, $6, $7, $8, $9, $10, $11)`, id, f.zoneID, f.workspaceID, desired,
		perms.AllowAudio, perms.AllowClipboardDown, perms.AllowClipboardUp, perms.AllowDownloads,
		perms.AllowMicrophone, perms.AllowUploads, perms.AllowGamepad)
	return id
}

// requestOnDemand does what the assigner does when no staged session
// fits: insert the session and emit provision.requested in one
// transaction, for the zone search zones (the requested zone first).
func (e *env) requestOnDemand(f fixture, zones []string, perms events.Permissions) (sessionID, requestID string) {
	e.t.Helper()
	sessionID, requestID = uuid.NewString(), "req-"+uuid.NewString()
	var cores float64
	var mem int
	if err := e.db.QueryRowContext(e.ctx, `SELECT cores, memory_mb FROM workspaces WHERE id = $1`, f.workspaceID).Scan(&cores, &mem); err != nil {
		e.t.Fatal(err)
	}
	err := db.InTx(e.ctx, e.db, func(tx *sqlx.Tx) error {
		if _, err := sessions.Insert(e.ctx, tx, sessions.New{
			ID: sessionID, RequestID: requestID, WorkspaceID: f.workspaceID, ZoneID: f.zoneID, UserID: f.userID,
			Origin: sessions.OriginOnDemand, Permissions: perms, Cores: cores, MemoryMB: mem,
		}); err != nil {
			return err
		}
		_, err := outbox.Emit(e.ctx, tx, "greenroom/assigner", events.TypeProvisionRequested, events.TypeProvisionRequested,
			events.ProvisionRequested{RequestID: requestID, SessionID: sessionID, Workspace: f.wsName, Zones: zones,
				Origin: sessions.OriginOnDemand, RequestedZone: zones[0]},
			requestID)
		return err
	})
	if err != nil {
		e.t.Fatalf("requesting an on-demand session: %v", err)
	}
	return sessionID, requestID
}

// claimStaged does what the assigner does for a staged claim: take the
// oldest staged session and emit session.assigned in one transaction, for
// a request that named the session's zone (zone search step 1).
func (e *env) claimStaged(f fixture, configID string) (sessions.Session, string) {
	e.t.Helper()
	requestID := "req-" + uuid.NewString()
	var s sessions.Session
	err := db.InTx(e.ctx, e.db, func(tx *sqlx.Tx) error {
		var err error
		var perms events.Permissions
		if err := tx.GetContext(e.ctx, &perms, `SELECT allow_audio, allow_clipboard_down, allow_clipboard_up, allow_downloads,
			allow_microphone, allow_uploads, allow_gamepad FROM staging_configs WHERE id = $1`, configID); err != nil {
			return err
		}
		if s, err = sessions.ClaimStaged(e.ctx, tx, configID, f.userID, requestID, perms); err != nil {
			return err
		}
		_, err = outbox.Emit(e.ctx, tx, "greenroom/assigner", events.TypeSessionAssigned, events.TypeSessionAssigned,
			events.SessionAssigned{RequestID: requestID, SessionID: s.ID, User: f.user, UserID: f.userID,
				Workspace: f.wsName, Zone: f.zone, StagingConfigID: configID, RequestedZone: f.zone, ZoneSearchStep: 1}, requestID)
		return err
	})
	if err != nil {
		e.t.Fatalf("claiming a staged session: %v", err)
	}
	return s, requestID
}

// emit publishes an event through the outbox, as another service would.
func (e *env) emit(eventType string, data any) { e.emitOn(eventType, eventType, data) }

func (e *env) emitOn(subject, eventType string, data any) {
	e.t.Helper()
	if err := db.InTx(e.ctx, e.db, func(tx *sqlx.Tx) error {
		_, err := outbox.Emit(e.ctx, tx, "greenroom/test", subject, eventType, data, "")
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) session(id string) sessions.Session {
	e.t.Helper()
	s, err := sessions.Get(e.ctx, e.db, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) countSessions(configID string, statuses ...sessions.Status) int {
	e.t.Helper()
	var n int
	st := make([]string, len(statuses))
	for i, s := range statuses {
		st[i] = string(s)
	}
	if err := e.db.GetContext(e.ctx, &n, `SELECT count(*) FROM sessions WHERE staging_config_id = $1 AND status = ANY($2)`,
		configID, pq.Array(st)); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// httpGet fetches url, without any proxy from the environment.
func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ptr[T any](v T) *T { return &v }

// requestIDHeader is the Greenroom-Request-Id header ev travelled with.
func (e *env) requestIDHeader(ev events.Event) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requestIDs[ev.ID]
}

func (e *env) configStatus(id string) string {
	e.t.Helper()
	var st string
	if err := e.db.GetContext(e.ctx, &st, `SELECT status FROM staging_configs WHERE id = $1`, id); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// waitIdle waits until every event written so far was published and
// handled by the provisioner.
func (e *env) waitIdle() {
	e.t.Helper()
	e.waitFor("the provisioner to handle every event", 30*time.Second, func() bool {
		var n int
		if err := e.db.GetContext(e.ctx, &n, `SELECT count(*) FROM outbox`); err != nil || n > 0 {
			return false
		}
		c, err := e.deps.JS.Consumer(e.ctx, libbus.StreamName, bus.ConsumerName)
		if err != nil {
			return false
		}
		info, err := c.Info(e.ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// counter returns the value of the counter name that labels select (0
// before anything counted).
func (e *env) counter(name string, labels map[string]string) float64 {
	e.t.Helper()
	v, _ := apptest.Metric(e.t, e.deps.Ops.Registry, name, labels)
	return v
}

// histogram returns the sum and count of the (unlabelled) histogram name.
func (e *env) histogram(name string) (float64, uint64) {
	e.t.Helper()
	h := apptest.Series(e.t, e.deps.Ops.Registry, name, nil).GetHistogram()
	return h.GetSampleSum(), h.GetSampleCount()
}
