// Package e2e runs all Greenroom services in-process against real
// PostgreSQL, an embedded JetStream server and the real Docker Engine, and
// drives them through the public HTTP API and the bus, as clients do.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/apptest"
	assigner "github.com/greenroom-dev/greenroom/services/assigner/service"
	configsvc "github.com/greenroom-dev/greenroom/services/config/service"
	expiry "github.com/greenroom-dev/greenroom/services/expiry/service"
	gwapp "github.com/greenroom-dev/greenroom/services/gateway/app"
	gateway "github.com/greenroom-dev/greenroom/services/gateway/service"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	provisioner "github.com/greenroom-dev/greenroom/services/provisioner/service"
)

const demoImage = "greenroom/demo-workspace:latest"

func TestMain(m *testing.M) {
	// The demo image is built from this repository; no registry is used.
	// So is the image of the local VM provider's machines.
	for _, script := range []string{"build-demo-image.sh", "build-agent-image.sh"} {
		cmd := exec.Command("bash", "../../scripts/"+script)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s: %v\n", script, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// greenroom is one complete deployment for a test.
type greenroom struct {
	t    *testing.T
	env  *apptest.Env
	deps *app.Deps // the config service's connections; also used to watch the bus
	api  *httptest.Server
	// gw is the gateway; sessions' URLs point at it.
	gw    *httptest.Server
	token string
	rec   *apptest.Recorder
	label string
}

func start(t *testing.T) *greenroom {
	t.Helper()
	return startIn(t, apptest.New(t))
}

// startIn starts the deployment in env (one whose NATS server has users,
// say: each service then connects as its own).
func startIn(t *testing.T, env *apptest.Env) *greenroom {
	t.Helper()
	return startTuned(t, env, nil)
}

// startTuned is startIn with the provisioner's configuration changed by
// tune (shorter periods, say).
func startTuned(t *testing.T, env *apptest.Env, tune func(*provisioner.Config)) *greenroom {
	t.Helper()
	g := &greenroom{t: t, env: env, token: "e2e-" + uuid.NewString(), label: uuid.NewString()}
	// Every container of this test carries greenroom.test=<id>; removing
	// them all at the end also covers a test that failed half-way.
	t.Cleanup(func() { removeContainers(t, "greenroom.test="+g.label) })

	g.deps = g.env.Deps(t, "config")
	g.rec = apptest.NewRecorder(t, g.deps.NC)
	cfg, err := configsvc.New(g.deps, configsvc.Config{AdminToken: g.token, AuditCheckpointEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, cfg)
	g.api = httptest.NewServer(cfg.Handler())
	t.Cleanup(g.api.Close)

	asg, err := assigner.New(g.env.Deps(t, "assigner"), assigner.Config{})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, asg)

	gw, err := gateway.New(g.env.Deps(t, "gateway"), gateway.Config{Config: gwapp.Config{AuthFallback: mustURL(t, g.api.URL)}})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, gw)
	g.gw = httptest.NewServer(gw.Handler())
	t.Cleanup(g.gw.Close)

	provCfg := provisioner.Config{
		Provision: command.Config{ReadinessTimeout: 30 * time.Second, ExtraLabels: map[string]string{"greenroom.test": g.label},
			GatewayURL: mustURL(t, g.gw.URL)},
	}
	if tune != nil {
		tune(&provCfg)
	}
	prov, err := provisioner.New(g.env.Deps(t, "provisioner"), provCfg)
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, prov)

	exp, err := expiry.New(g.env.Deps(t, "expiry"), expiry.Config{Sweeper: expiry.SweeperConfig{Interval: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, exp)
	return g
}

// buildBinaries builds the commands of this repository at paths (import
// paths below github.com/greenroom-dev/greenroom/, such as
// "services/config") into a temporary directory, and returns it.
func buildBinaries(t *testing.T, paths ...string) string {
	t.Helper()
	bin := t.TempDir()
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, p := range paths {
		args = append(args, "github.com/greenroom-dev/greenroom/"+p)
	}
	build := exec.Command("go", args...)
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func removeContainers(t *testing.T, label string) {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output()
	if err != nil {
		t.Logf("listing containers %s: %v", label, err)
		return
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return
	}
	if out, err := exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
		t.Logf("removing containers: %v: %s", err, out)
	}
}

// call sends a JSON request to the API and decodes the JSON answer.
func (g *greenroom) call(method, path string, body any, hdr ...string) (int, map[string]any) {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			g.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, g.api.URL+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			g.t.Fatalf("%s %s: %d, undecodable body %q", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// create POSTs a resource and fails the test unless it is created.
func (g *greenroom) create(path string, body map[string]any) map[string]any {
	g.t.Helper()
	status, out := g.call(http.MethodPost, path, body)
	if status != http.StatusCreated {
		g.t.Fatalf("POST %s: %d %v", path, status, out)
	}
	return out
}

// session asks for a session over HTTP, as a user-facing service would.
func (g *greenroom) session(t *testing.T, user, workspace, zone string, extra ...string) (map[string]any, time.Duration) {
	t.Helper()
	body := map[string]any{"user": user, "workspace": workspace, "zone": zone}
	if len(extra) > 0 {
		body["request_id"] = extra[0]
	}
	start := time.Now()
	status, out := g.call(http.MethodPost, "/api/v1/sessions?wait=60s", body)
	took := time.Since(start)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("POST /api/v1/sessions for %s: %d %v", user, status, out)
	}
	if out["status"] != "running" {
		t.Fatalf("session for %s is %v, want running: %v", user, out["status"], out)
	}
	return out, took
}

// staged returns the current staged count of a staging config.
func (g *greenroom) staged(id string) int {
	_, sc := g.call(http.MethodGet, "/api/v1/staging-configs/"+id, nil)
	n, _ := sc["current_sessions"].(float64)
	return int(n)
}

func (g *greenroom) waitStaged(id string, want int, timeout time.Duration) {
	g.t.Helper()
	apptest.Eventually(g.t, timeout, fmt.Sprintf("staging config %s at %d staged", id, want), func() bool {
		return g.staged(id) == want
	})
}

// page fetches a session's page from its container.
func (g *greenroom) page(t *testing.T, sessionID string) string {
	t.Helper()
	var url string
	if err := g.env.DB.Get(&url, `SELECT upstream_url FROM sessions WHERE id = $1`, sessionID); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
