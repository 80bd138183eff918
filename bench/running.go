package bench

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/db"
)

// Deployment is a running Greenroom (as `make up` starts it) to measure
// instead of private environments.
type Deployment struct {
	DatabaseURL string
	NatsURL     string
	APIURL      string
	AdminToken  string
	// RunDir holds the services' pid files (<service>.pid), as
	// scripts/up.sh writes them; used for the footprint.
	RunDir string
}

// target is the deployment of this run; nil means private environments.
var target *Deployment

// runningScenarios can run against a deployment that others use: they go
// through its API and bus and create only what they delete again. The
// others need an environment of their own, and say why.
var runningScenarios = map[string]string{
	"staged": "",
	"refill": "",
	"settings": "it writes persistent profiles and volume mappings into a temporary directory of this machine, " +
		"which is the agent's only in a private environment",
	"roll": "it changes a workspace's image, which rolls every staged container of it, and tags a second " +
		"image on this machine's engine, which is the agent's only in a private environment",
	"footprint": "",
	"handoff": "it starts up to 150 idle containers of its own and compares the hand-off with a bare exec " +
		"on a quiet engine",
	"assign": "it seeds thousands of staged rows without containers, far more than a real pool holds, " +
		"with the provisioner stopped",
	"provision": "it compares the provisioner with a bare Docker loop on a quiet machine and engine",
	"idle":      "it compares CPU with 50 staged containers against none, which needs a quiet deployment",
	"console": "it inserts 1,000 staged session rows without containers directly into the database, which a " +
		"deployment's provisioner and expiry would act on",
	"audit": "it writes a million events into the stream and copies sessions' rows into the database, " +
		"far more than a shared deployment should get",
}

// benchServices are the services scripts/up.sh starts, by pid file name.
var benchServices = []string{"config", "assigner", "provisioner", "expiry"}

// startRunning returns an env on the running deployment d. What the bench
// creates there is named bench*: one zone, agent, group and user and a few
// workspaces, which later runs reuse (sessions keep referring to them, so
// they cannot be deleted), and the staging configs, which close deletes
// with the sessions the bench was given.
func startRunning(d Deployment) (e *env, err error) {
	e = &env{Token: d.AdminToken, Label: uuid.NewString(), log: zap.NewNop(), running: true,
		Zone: "bench", User: "bench", prefix: "bench-", NatsURL: d.NatsURL, apiURL: strings.TrimRight(d.APIURL, "/"),
		DBURL: d.DatabaseURL}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.Token == "" {
		return e, fmt.Errorf("no admin token: set GREENROOM_ADMIN_TOKEN or run from the directory where make up wrote .run/admin-token")
	}
	status, _, err := e.call(http.MethodGet, "/api/v1/zones", nil)
	if err != nil {
		return e, fmt.Errorf("no running deployment answers at %s (start one with make up): %w", e.apiURL, err)
	}
	if status != http.StatusOK {
		return e, fmt.Errorf("the deployment at %s answered GET /api/v1/zones with %d (wrong admin token?)", e.apiURL, status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if e.DB, err = db.Open(ctx, d.DatabaseURL, 10*time.Second); err != nil {
		return e, err
	}
	e.undo = append(e.undo, func() { _ = e.DB.Close() })
	e.undo = append(e.undo, func() { removeContainers("greenroom.bench=" + e.Label) })
	e.undo = append(e.undo, e.cleanupRunning)
	return e, nil
}

// reuse updates a named resource left by an earlier run to body and
// returns its id.
func (e *env) reuse(path string, body map[string]any) (string, error) {
	key, _ := body["name"].(string)
	if path == "/api/v1/users" {
		key, _ = body["username"].(string)
	}
	if key == "" {
		return "", fmt.Errorf("POST %s: 409", path)
	}
	patch := maps.Clone(body)
	delete(patch, "name")
	delete(patch, "username")
	if path == "/api/v1/agents" {
		patch["enabled"] = true // an earlier run may have stopped with it disabled
	}
	status, out, err := e.call(http.MethodPatch, path+"/"+key, patch)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("PATCH %s/%s: %d %v", path, key, status, out)
	}
	id, _ := out["id"].(string)
	return id, nil
}

// cleanupRunning destroys the sessions the bench was given and deletes its
// staging configs, then waits (up to a minute) until none of the bench
// zone's sessions is alive, so that no container of the bench outlives it.
func (e *env) cleanupRunning() {
	e.mu.Lock()
	sessions, created := e.sessions, e.created
	e.mu.Unlock()
	var left []string
	for _, path := range append(prefixAll("/api/v1/sessions/", sessions), created...) {
		status, out, err := e.call(http.MethodDelete, path, nil)
		if err != nil || (status != http.StatusNoContent && status != http.StatusAccepted && status != http.StatusNotFound) {
			left = append(left, fmt.Sprintf("DELETE %s: %d %v %v", path, status, out, err))
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var alive int
		err := e.DB.Get(&alive, `SELECT count(*) FROM sessions s JOIN zones z ON z.id = s.zone_id
			WHERE z.name = $1 AND s.status NOT IN ('destroyed', 'failed')`, e.Zone)
		if err == nil && alive == 0 {
			break
		}
		if time.Now().After(deadline) {
			left = append(left, fmt.Sprintf("%d sessions of zone %s still alive after a minute (%v)", alive, e.Zone, err))
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(left) > 0 {
		note("cleaning up the running deployment: %s", strings.Join(left, "; "))
	}
}

func prefixAll(prefix string, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = prefix + id
	}
	return out
}

// runningFootprint reports the RSS, peak RSS and CPU time of the
// deployment's services, found by their pid files.
func runningFootprint(d Deployment, when string) {
	for _, s := range benchServices {
		pid, err := readPid(filepath.Join(d.RunDir, s+".pid"))
		if err != nil {
			note("footprint of %s: %v", s, err)
			continue
		}
		rss, peak := procRSS(pid)
		mib := float64(rss) / (1 << 20)
		if when == "idle" {
			add(footprintScenarioName, s+" RSS idle (running deployment)", mib, "MiB", 0, 0, "< 50 MiB", ptr(mib < 50))
		} else {
			add(footprintScenarioName, s+" RSS "+when+" (running deployment)", mib, "MiB", 0, 0, "", nil)
			add(footprintScenarioName, s+" peak RSS (VmHWM, running deployment)", float64(peak)/(1<<20), "MiB", 0, 0, "", nil)
		}
		if cpu, err := procCPU(pid); err == nil {
			add(footprintScenarioName, s+" CPU since start, "+when+" (running deployment)", cpu, "s", 0, 0, "", nil)
		}
	}
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("no pid file (%w); was the deployment started with make up from this directory?", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("bad pid file %s: %w", path, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return 0, fmt.Errorf("process %d of %s is not running", pid, path)
	}
	return pid, nil
}
