package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	dockerclient "github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/libs/client"
)

const handoffScenarioName = "hand-off"

// handoffPaths are the three ways a staged container is handed to its
// user that the scenario compares, in the order of its rows.
const (
	pathHook = "staged (http hook)"
	pathExec = "staged (exec)"
	pathBare = "bare docker exec"
)

// handoffScenario (issue 11) measures the hand-off of staged sessions by
// the HTTP assign hook beside the assign exec and a bare docker exec, in
// one run on one engine:
//
//   - with 1, 50 and 150 idle containers on the engine (the bare exec's
//     targets; each pool's staged container comes on top), one request at
//     a time on a quiet machine, to show how the exec degrades as the
//     engine holds more containers and the hook does not;
//   - at 1, 100 and 500 requests per second offered (open loop), from
//     pools large enough not to run dry, each path on its own so that
//     they do not load each other.
func handoffScenario(quick bool) error {
	levels, samples := []int{1, 50, 150}, 10
	type burst struct {
		rate float64
		n    int
	}
	bursts := []burst{{1, 10}, {100, 100}, {500, 100}}
	if quick {
		levels, samples = []int{1, 20}, 5
		bursts = []burst{{1, 5}, {100, 30}, {500, 30}}
	}
	pool := 0
	for _, b := range bursts {
		pool = max(pool, b.n)
	}

	r, err := startRequesting()
	if err != nil {
		return err
	}
	defer r.close()
	e, request, h := r.env, r.request, r.hops
	dc, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		return err
	}
	defer dc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()

	hooked := e.workspace("ho-hook")
	hooked["assign_hook"] = map[string]any{"path": "/.greenroom/assign", "timeout": "5s"}
	if _, err := e.create("/api/v1/workspaces", hooked); err != nil {
		return err
	}
	if _, err := e.create("/api/v1/workspaces", e.workspace("ho-exec")); err != nil {
		return err
	}
	hookSC, err := e.create("/api/v1/staging-configs", e.stagingConfig("ho-hook", 1))
	if err != nil {
		return err
	}
	execSC, err := e.create("/api/v1/staging-configs", e.stagingConfig("ho-exec", 1))
	if err != nil {
		return err
	}
	ws := map[string]string{pathHook: "ho-hook", pathExec: "ho-exec"}
	scOf := map[string]string{pathHook: hookSC, pathExec: execSC}

	var fillers []string // the bare exec's idle containers
	defer func() {
		for _, id := range fillers {
			_, _ = dc.ContainerRemove(context.Background(), id, dockerclient.ContainerRemoveOptions{Force: true})
		}
	}()
	var made []string // sessions to destroy before the next step
	settle := func(desired int) error {
		if err := e.destroySessions(made); err != nil {
			return err
		}
		made = made[:0]
		for _, sc := range []string{hookSC, execSC} {
			if _, err := e.waitStaged(sc, desired, 10*time.Minute); err != nil {
				return err
			}
		}
		// Every container of the environment: the fillers, the pools',
		// and none of a destroyed session.
		return e.waitContainers(ctx, dc, len(fillers)+2*desired, 5*time.Minute)
	}

	// One request at a time, at each count of idle containers.
	hookAt := map[int]time.Duration{}
	for _, level := range levels {
		if interrupted() {
			return nil
		}
		started := time.Now()
		for len(fillers) < level {
			ids, err := startIdle(ctx, dc, e.Label, level-len(fillers))
			fillers = append(fillers, ids...)
			if err != nil {
				return fmt.Errorf("idle containers: %w", err)
			}
		}
		if err := settle(1); err != nil {
			return err
		}
		note("hand-off: %d idle containers on the engine (+ each pool's staged one) after %s", level, time.Since(started).Round(time.Second))
		lat := map[string][]time.Duration{}
		var hookIDs, hookSessions []string
		for i := 0; i < samples && !interrupted(); i++ {
			// Quiet before each: what follows a container's start and the
			// last exec (the shim, the exec's state) has settled.
			time.Sleep(time.Second)
			waitQuiet(0.25, 15*time.Second)
			d, err := bareExecAssign(ctx, dc, fillers[i%len(fillers)])
			if err != nil {
				return fmt.Errorf("bare exec: %w", err)
			}
			lat[pathBare] = append(lat[pathBare], d)
			for _, p := range []string{pathHook, pathExec} {
				if _, err := e.waitStaged(scOf[p], 1, 5*time.Minute); err != nil {
					return err
				}
				time.Sleep(time.Second)
				waitQuiet(0.25, 15*time.Second)
				d, s, err := request(ws[p])
				if err != nil {
					return fmt.Errorf("%s request: %w", p, err)
				}
				if s.Origin != "staged" {
					return fmt.Errorf("%s: expected a staged session, got %s", p, s.Origin)
				}
				made = append(made, s.SessionID)
				lat[p] = append(lat[p], d)
				if p == pathHook {
					hookIDs = append(hookIDs, s.RequestID)
					hookSessions = append(hookSessions, s.SessionID)
				}
			}
		}
		for _, p := range []string{pathHook, pathExec, pathBare} {
			st := sorted(lat[p])
			add(handoffScenarioName, fmt.Sprintf("%s p50, %d idle containers (n=%d)", p, level, st.n), ms(st.p(0.5)), "ms", 0, 0, "", nil)
		}
		hookAt[level] = sorted(lat[pathHook]).p(0.5)
		if level == levels[0] {
			hookHops(handoffScenarioName, fmt.Sprintf("%s, %d idle containers,", pathHook, level), h.fineSplit(hookIDs), e.execs, hookSessions)
		}
	}
	first, last := levels[0], levels[len(levels)-1]
	if a, b := hookAt[first], hookAt[last]; a > 0 && b > 0 {
		diff := ms(b) - ms(a)
		add(handoffScenarioName, fmt.Sprintf("%s p50 at %d idle containers − at %d", pathHook, last, first), diff, "ms", 0, 0,
			"≤ 2 ms", ptr(diff <= 2))
	}

	// Offered rates, from pools that do not run dry.
	for _, sc := range []string{hookSC, execSC} {
		if status, out, err := e.call(http.MethodPatch, "/api/v1/staging-configs/"+sc, map[string]any{"desired_sessions": pool}); err != nil || status != http.StatusOK {
			return fmt.Errorf("growing pool %s to %d: %d %v %v", sc, pool, status, out, err)
		}
	}
	started := time.Now()
	if err := settle(pool); err != nil {
		return err
	}
	note("hand-off: pools of %d staged each filled in %s", pool, time.Since(started).Round(time.Second))
	p50 := map[string]map[float64]time.Duration{pathHook: {}, pathExec: {}}
	for _, b := range bursts {
		for _, p := range []string{pathHook, pathExec, pathBare} {
			if interrupted() {
				return nil
			}
			time.Sleep(2 * time.Second)
			waitQuiet(0.25, 30*time.Second)
			var mu sync.Mutex
			var lat []time.Duration
			var ids, sids []string
			failed := 0
			var firstErr error
			openLoop(b.n, b.rate, func(i int) {
				var d time.Duration
				var err error
				var sessionID, requestID, origin string
				if p == pathBare {
					d, err = bareExecAssign(ctx, dc, fillers[i%len(fillers)])
					origin = "staged"
				} else {
					var s client.Session
					d, s, err = request(ws[p])
					sessionID, requestID, origin = s.SessionID, s.RequestID, s.Origin
				}
				mu.Lock()
				defer mu.Unlock()
				if sessionID != "" {
					made = append(made, sessionID)
				}
				if err != nil || origin != "staged" {
					failed++
					if firstErr == nil {
						firstErr = errors.Join(err, fmt.Errorf("origin %q", origin))
					}
					return
				}
				lat = append(lat, d)
				ids = append(ids, requestID)
				sids = append(sids, sessionID)
			})
			st := sorted(lat)
			name := fmt.Sprintf("%s request → ready", p)
			if p == pathBare {
				name = p
			}
			at := fmt.Sprintf(" at %g/s offered (n=%d)", b.rate, st.n)
			if failed > 0 {
				note("hand-off: %s at %g/s: %d of %d failed or were not staged (first: %v)", p, b.rate, failed, b.n, firstErr)
				add(handoffScenarioName, name+" not served staged"+at, float64(failed), "requests", 0, 0, "= 0", ptr(false))
			}
			if st.n == 0 {
				continue
			}
			p50Target, p99Target := "", ""
			var p50Met, p99Met *bool
			if p == pathHook && b.rate == 100 {
				p50Target, p50Met = "≤ 10 ms", ptr(st.p(0.5) <= 10*time.Millisecond)
				p99Target, p99Met = "≤ 30 ms", ptr(st.p(0.99) <= 30*time.Millisecond)
			}
			add(handoffScenarioName, name+" p50"+at, ms(st.p(0.5)), "ms", 0, 0, p50Target, p50Met)
			add(handoffScenarioName, name+" p99"+at, ms(st.p(0.99)), "ms", 0, 0, p99Target, p99Met)
			add(handoffScenarioName, name+" max"+at, ms(st.p(1)), "ms", 0, 0, "", nil)
			if p != pathBare {
				p50[p][b.rate] = st.p(0.5)
			}
			if p == pathHook && b.rate == 100 {
				hookHops(handoffScenarioName, fmt.Sprintf("%s at 100/s", pathHook), h.fineSplit(ids), e.execs, sids)
			}
			if err := settle(pool); err != nil {
				return err
			}
		}
	}
	for _, b := range bursts {
		hk, ex := p50[pathHook][b.rate], p50[pathExec][b.rate]
		if hk > 0 && ex > 0 {
			speed := ms(ex) / ms(hk)
			add(handoffScenarioName, fmt.Sprintf("speed-up hook vs exec (p50, same run) at %g/s", b.rate), speed, "×", 0, 0, "≥ 8×", ptr(speed >= 8))
		}
	}
	return nil
}

// openLoop calls fn(i) for i in [0, n) at rate per second, each call on
// schedule in its own goroutine whatever the earlier ones are doing, and
// waits for them all.
func openLoop(n int, rate float64, fn func(i int)) {
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n && !interrupted(); i++ {
		if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// startIdle starts n idle demo containers, four at a time, and returns the
// ids of those it started.
func startIdle(ctx context.Context, dc *dockerclient.Client, label string, n int) ([]string, error) {
	var mu sync.Mutex
	var ids []string
	var firstErr error
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, id, err := bareCreateStart(ctx, dc, label)
			mu.Lock()
			defer mu.Unlock()
			if id != "" {
				ids = append(ids, id)
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	return ids, firstErr
}

// destroySessions destroys the sessions through the API (asynchronous;
// waitContainers tells when their containers are gone).
func (e *env) destroySessions(ids []string) error {
	for _, id := range ids {
		status, out, err := e.call(http.MethodDelete, "/api/v1/sessions/"+id, nil)
		if err != nil {
			return err
		}
		if status >= 300 && status != http.StatusNotFound && status != http.StatusConflict {
			return fmt.Errorf("DELETE session %s: %d %v", id, status, out)
		}
	}
	return nil
}

// waitContainers waits until the engine holds exactly want containers of
// this environment.
func (e *env) waitContainers(ctx context.Context, dc *dockerclient.Client, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	n := -1
	for time.Now().Before(deadline) && !interrupted() {
		cs, err := dc.ContainerList(ctx, dockerclient.ContainerListOptions{All: true,
			Filters: dockerclient.Filters{}.Add("label", "greenroom.bench="+e.Label)})
		if err != nil {
			return err
		}
		if n = len(cs.Items); n == want {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the engine holds %d containers of the bench, not %d, after %s", n, want, timeout)
}
