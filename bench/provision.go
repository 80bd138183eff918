package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	dockerclient "github.com/moby/moby/client"
)

const (
	provisionScenarioName = "provisioning rate"
	idleScenarioName      = "idle cost of staging"
	// refillBudget is the provisioner's GREENROOM_REFILL_CONCURRENCY
	// default (staged sessions provisioning at once); the bare loop runs
	// with the same concurrency.
	refillBudget = 4
	// noDelay is the demo image's environment for an immediate answer.
	noDelay = "GREENROOM_DEMO_INIT_DELAY=0s"
)

// provisionScenarios runs the provisioning rate (issue 5 point 4) and the
// idle cost of staged containers (point 3) on one full stack. The idle
// baseline (no staged container of this run) is measured first, on a
// quiet engine; the staging config of the rate scenario is then grown to
// the idle scenario's size.
func provisionScenarios(quick, rate, idle bool) error {
	n, idleN, window := 30, 50, 15*time.Second
	if quick {
		n, idleN, window = 10, 20, 5*time.Second
	}
	e, err := startEnv(envFull)
	if err != nil {
		return err
	}
	defer e.close()
	if _, _, err := e.fixture(); err != nil {
		return err
	}
	ws := e.workspace("demo-fast")
	ws["run_config"] = map[string]any{"environment": map[string]any{"GREENROOM_DEMO_INIT_DELAY": "0s"}}
	if _, err := e.create("/api/v1/workspaces", ws); err != nil {
		return err
	}

	var base cpuUse
	if idle {
		time.Sleep(2 * time.Second) // the services' start-up work settles
		if base, err = measureCPU(window); err != nil {
			return err
		}
	}
	scID := ""
	if rate && !interrupted() {
		if scID, err = provisioningRate(e, n); err != nil {
			return err
		}
	}
	if !idle || interrupted() {
		return nil
	}
	if scID == "" {
		if scID, err = e.create("/api/v1/staging-configs", e.stagingConfig("demo-fast", idleN)); err != nil {
			return err
		}
	} else {
		status, out, err := e.call(http.MethodPatch, "/api/v1/staging-configs/"+scID, map[string]any{"desired_sessions": idleN})
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("PATCH staging config: %d %v", status, out)
		}
	}
	if _, err := e.waitStaged(scID, idleN, 300*time.Second); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // the last readiness probes and engine events settle
	loaded, err := measureCPU(window)
	if err != nil {
		return err
	}
	if got := e.staged(scID); got != idleN {
		note("idle cost: %d staged at the end of the window, %d expected", got, idleN)
	}
	w := fmt.Sprintf(" (%g s window)", window.Seconds())
	for _, x := range []struct {
		name string
		a, b float64
	}{
		{"engine (dockerd+containerd+shims)", base.engine, loaded.engine},
		{"Greenroom in-process (bench process: services + NATS)", base.self, loaded.self},
		{"PostgreSQL (all backends on the server)", base.postgres, loaded.postgres},
	} {
		add(idleScenarioName, x.name+" CPU, 0 staged"+w, x.a, "% of one core", 0, 0, "", nil)
		add(idleScenarioName, fmt.Sprintf("%s CPU, %d staged%s", x.name, idleN, w), x.b, "% of one core", 0, 0, "", nil)
	}
	added := (loaded.engine + loaded.self + loaded.postgres) - (base.engine + base.self + base.postgres)
	limit := 5 * float64(idleN) / 50
	target := "< 5 % for 50"
	if idleN != 50 {
		target = fmt.Sprintf("< 5 %% for 50 (< %g %% for %d)", limit, idleN)
	}
	add(idleScenarioName, fmt.Sprintf("added by %d staged (engine + Greenroom + PostgreSQL)", idleN), added, "% of one core",
		0, 0, target, ptr(added < limit))
	return nil
}

// provisioningRate times n containers made by a bare Docker API loop with
// refillBudget workers (the raw limit), removes them, then times a staging
// config of desired n from its creation until n are staged. It returns the
// staging config's id.
func provisioningRate(e *env, n int) (string, error) {
	dc, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		return "", err
	}
	defer dc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Raw limit: create + start + first /healthz answer, refillBudget at once.
	jobs := make(chan int, n)
	for i := range n {
		jobs <- i
	}
	close(jobs)
	var mu sync.Mutex
	var ids []string
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range refillBudget {
		wg.Go(func() {
			for range jobs {
				if interrupted() {
					return
				}
				_, id, err := bareCreateStart(ctx, dc, e.Label, noDelay)
				mu.Lock()
				if id != "" {
					ids = append(ids, id)
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	bare := time.Since(start)
	removeAll(dc, ids)
	if firstErr != nil {
		return "", fmt.Errorf("bare create+start: %w", firstErr)
	}
	if interrupted() {
		return "", nil
	}
	bareRate := float64(n) / bare.Seconds()

	start = time.Now()
	scID, err := e.create("/api/v1/staging-configs", e.stagingConfig("demo-fast", n))
	if err != nil {
		return "", err
	}
	if _, err := e.waitStaged(scID, n, 180*time.Second); err != nil {
		return "", err
	}
	took := time.Since(start)
	gr := float64(n) / took.Seconds()
	c := fmt.Sprintf(" (n=%d, %d at once)", n, refillBudget)
	add(provisionScenarioName, "bare create+start+first answer"+c, bareRate, "containers/s", 0, 0, "", nil)
	add(provisionScenarioName, "bare loop total"+c, bare.Seconds(), "s", 0, 0, "", nil)
	add(provisionScenarioName, "staging config created → all staged total"+c, took.Seconds(), "s", 0, 0, "", nil)
	add(provisionScenarioName, "provisioner staged rate"+c, gr, "containers/s", bareRate, gr/bareRate,
		"≥ 80 % of bare", ptr(gr >= 0.8*bareRate))
	return scID, nil
}

// removeAll force-removes containers, refillBudget at once (bounded).
func removeAll(dc *dockerclient.Client, ids []string) {
	ch := make(chan string, len(ids))
	for _, id := range ids {
		ch <- id
	}
	close(ch)
	var wg sync.WaitGroup
	for range refillBudget {
		wg.Go(func() {
			for id := range ch {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				if _, err := dc.ContainerRemove(ctx, id, dockerclient.ContainerRemoveOptions{Force: true}); err != nil {
					fmt.Fprintf(os.Stderr, "bench: removing %s: %v\n", id, err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
}

// cpuUse is CPU use over a window, in % of one core.
type cpuUse struct{ engine, self, postgres float64 }

// measureCPU reads the CPU time of the engine's processes (dockerd,
// containerd and the containerd shims), of this process (the services run
// in it) and of PostgreSQL's processes at the start and end of window. A
// process counts only when it lives through the whole window. /proc/<pid>/stat
// counts in ticks of 10 ms (0.2 % of one core per process over 5 s);
// this process's own time comes from getrusage, in microseconds.
func measureCPU(window time.Duration) (cpuUse, error) {
	before := procTimes()
	self0, err := selfCPU()
	if err != nil {
		return cpuUse{}, err
	}
	start := time.Now()
	select {
	case <-time.After(window):
	case <-stopping:
	}
	after := procTimes()
	self1, err := selfCPU()
	if err != nil {
		return cpuUse{}, err
	}
	wall := time.Since(start).Seconds()
	var u cpuUse
	engineSeen := false
	for pid, a := range after {
		b, ok := before[pid]
		if !ok || b.kind != a.kind {
			continue
		}
		d := (a.cpu - b.cpu) / wall * 100
		switch a.kind {
		case "engine":
			u.engine += d
			engineSeen = true
		case "postgres":
			u.postgres += d
		}
	}
	if !engineSeen {
		return u, fmt.Errorf("no dockerd/containerd process visible in /proc")
	}
	u.self = (self1 - self0) / wall * 100
	return u, nil
}

type procTime struct {
	kind string
	cpu  float64
}

// procTimes returns the CPU seconds of the engine's and PostgreSQL's
// processes by pid.
func procTimes() map[int]procTime {
	out := map[int]procTime{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue
		}
		kind := ""
		switch c := strings.TrimSpace(string(b)); {
		case c == "dockerd" || strings.HasPrefix(c, "containerd"):
			kind = "engine"
		case c == "postgres":
			kind = "postgres"
		default:
			continue
		}
		if cpu, err := procCPU(pid); err == nil {
			out[pid] = procTime{kind, cpu}
		}
	}
	return out
}

// selfCPU returns this process's user+system CPU seconds (all threads).
func selfCPU() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), nil
}
