package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	dockerclient "github.com/moby/moby/client"
	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/client"
)

const (
	stagedScenarioName = "staged vs on demand"
	refillScenarioName = "pool refill"
)

// containerScenarios runs the scenarios that need the full stack with the
// provisioner and real containers of the demo image (default init delay).
func containerScenarios(quick, staged, refill, settings bool) error {
	samples, poolSize := 20, 20
	if quick {
		samples, poolSize = 5, 10
	}
	r, err := startRequesting()
	if err != nil {
		return err
	}
	defer r.close()
	e, request, h := r.env, r.request, r.hops
	if staged {
		if err := stagedVsOnDemand(e, samples, request, h); err != nil {
			return err
		}
	}
	if refill && !interrupted() {
		if err := poolRefill(e, poolSize, request); err != nil {
			return err
		}
	}
	if settings && !interrupted() {
		if err := settingsCost(e, max(3, samples/2), request); err != nil {
			return err
		}
	}
	return nil
}

type requestFunc func(ws string) (time.Duration, client.Session, error)

// requesting is a full environment with its fixture, and a requester over
// the bus whose requests are split at their events.
type requesting struct {
	env     *env
	request requestFunc
	hops    *hops
	undo    []func()
}

// startRequesting starts a full environment (startEnv(envFull)), creates
// its fixture and connects the requester; close undoes it all.
func startRequesting() (r *requesting, err error) {
	r = &requesting{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.env, err = startEnv(envFull); err != nil {
		return r, err
	}
	r.undo = append(r.undo, r.env.close)
	if _, _, err = r.env.fixture(); err != nil {
		return r, err
	}
	nc, err := nats.Connect(r.env.NatsURL)
	if err != nil {
		return r, err
	}
	r.undo = append(r.undo, nc.Close)
	if r.hops, err = newHops(nc); err != nil {
		return r, err
	}
	r.undo = append(r.undo, r.hops.close)
	request, closeClient, err := r.env.busRequester(nc, r.hops.send)
	if err != nil {
		return r, err
	}
	r.request = request
	r.undo = append(r.undo, closeClient)
	return r, nil
}

func (r *requesting) close() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
}

// busRequester returns a requestFunc asking for sessions of the bench user
// over the bus, as an internal service does (libs/client), and what closes
// its client; sent, when set, is told each request id before it goes.
func (e *env) busRequester(nc *nats.Conn, sent func(id string)) (requestFunc, func(), error) {
	cl, err := client.New(nc, client.WithSource("greenroom/bench"))
	if err != nil {
		return nil, nil, err
	}
	return func(ws string) (time.Duration, client.Session, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		id := uuid.NewString()
		if sent != nil {
			sent(id)
		}
		start := time.Now()
		s, err := cl.Request(ctx, client.Request{RequestID: id, User: e.User, Workspace: e.name(ws), Zone: e.Zone})
		took := time.Since(start)
		e.madeSession(s.SessionID)
		return took, s, err
	}, cl.Close, nil
}

func stagedVsOnDemand(e *env, samples int, request requestFunc, h *hops) error {
	dc, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		return err
	}
	defer dc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Raw limits first, on a quiet machine.
	var bareStart []time.Duration
	for i := 0; i < samples && !interrupted(); i++ {
		d, id, err := bareCreateStart(ctx, dc, e.Label)
		if id != "" {
			_, _ = dc.ContainerRemove(context.Background(), id, dockerclient.ContainerRemoveOptions{Force: true})
		}
		if err != nil {
			return fmt.Errorf("bare create+start: %w", err)
		}
		bareStart = append(bareStart, d)
	}
	// The idle container of the bare exec; its samples interleave with the
	// staged ones so that both see the same machine.
	_, idle, err := bareCreateStart(ctx, dc, e.Label)
	if idle != "" {
		defer func() {
			_, _ = dc.ContainerRemove(context.Background(), idle, dockerclient.ContainerRemoveOptions{Force: true})
		}()
	}
	if err != nil {
		return fmt.Errorf("idle container: %w", err)
	}
	if _, err := bareExecAssign(ctx, dc, idle); err != nil { // warm-up
		return fmt.Errorf("bare exec: %w", err)
	}
	var bareExec []time.Duration

	// Greenroom: a pool of 2, back at full before each sample so the
	// refill's container creation does not overlap the measured request.
	if _, err := e.create("/api/v1/workspaces", e.workspace("demo")); err != nil {
		return err
	}
	if _, err := e.create("/api/v1/workspaces", e.workspace("demo-od")); err != nil {
		return err
	}
	scID, err := e.create("/api/v1/staging-configs", e.stagingConfig("demo", 2))
	if err != nil {
		return err
	}
	// The same workspace handing over by the HTTP assign hook instead of
	// the exec (issue 11), sampled beside it.
	hooked := e.workspace("demo-hook")
	hooked["assign_hook"] = map[string]any{"path": "/.greenroom/assign", "timeout": "5s"}
	if _, err := e.create("/api/v1/workspaces", hooked); err != nil {
		return err
	}
	hookID, err := e.create("/api/v1/staging-configs", e.stagingConfig("demo-hook", 2))
	if err != nil {
		return err
	}
	var hookLat []time.Duration
	var hookIDs, hookSessions []string
	var stagedLat, onDemand []time.Duration
	var stagedIDs, stagedSessions []string
	for i := 0; i < samples && !interrupted(); i++ {
		if _, err := e.waitStaged(scID, 2, 90*time.Second); err != nil {
			return err
		}
		// Let what follows a container's start (its last probes, the
		// events about it) settle: both measures see a quiet machine.
		time.Sleep(time.Second)
		x, err := bareExecAssign(ctx, dc, idle)
		if err != nil {
			return fmt.Errorf("bare exec: %w", err)
		}
		bareExec = append(bareExec, x)
		// The engine finishes an exec after it answers (the shim, the
		// exec's state): an exec right behind another one is slower, so
		// the staged one waits as the bare one did.
		time.Sleep(time.Second)
		d, s, err := request("demo")
		if err != nil {
			return fmt.Errorf("staged request: %w", err)
		}
		if s.Origin != "staged" {
			return fmt.Errorf("expected a staged session, got %s", s.Origin)
		}
		stagedLat = append(stagedLat, d)
		stagedIDs = append(stagedIDs, s.RequestID)
		stagedSessions = append(stagedSessions, s.SessionID)
	}
	for i := 0; i < samples && !interrupted(); i++ {
		if _, err := e.waitStaged(hookID, 2, 90*time.Second); err != nil {
			return err
		}
		time.Sleep(time.Second) // as quiet as the exec's samples
		d, s, err := request("demo-hook")
		if err != nil {
			return fmt.Errorf("staged request by the assign hook: %w", err)
		}
		if s.Origin != "staged" {
			return fmt.Errorf("expected a staged session of demo-hook, got %s", s.Origin)
		}
		hookLat = append(hookLat, d)
		hookIDs = append(hookIDs, s.RequestID)
		hookSessions = append(hookSessions, s.SessionID)
	}
	if _, err := e.waitStaged(scID, 2, 90*time.Second); err != nil {
		return err
	}
	for i := 0; i < samples && !interrupted(); i++ {
		d, s, err := request("demo-od")
		if err != nil {
			return fmt.Errorf("on-demand request: %w", err)
		}
		if s.Origin != "on_demand" {
			return fmt.Errorf("expected an on-demand session, got %s", s.Origin)
		}
		onDemand = append(onDemand, d)
	}
	if len(stagedLat) == 0 || len(onDemand) == 0 || len(bareExec) == 0 || len(bareStart) == 0 {
		return nil
	}
	st, od, be, bs := sorted(stagedLat), sorted(onDemand), sorted(bareExec), sorted(bareStart)
	n := fmt.Sprintf(" (n=%d)", len(st.lat))
	add(stagedScenarioName, "bare docker exec assign p50"+fmt.Sprintf(" (n=%d)", len(be.lat)), ms(be.p(0.5)), "ms", 0, 0, "", nil)
	add(stagedScenarioName, "bare create+start+first answer p50"+fmt.Sprintf(" (n=%d)", len(bs.lat)), ms(bs.p(0.5)), "ms", 0, 0, "", nil)
	add(stagedScenarioName, "staged request → ready p50"+n, ms(st.p(0.5)), "ms", ms(be.p(0.5)), ms(st.p(0.5))/ms(be.p(0.5)),
		"≤ bare exec + 15 ms", ptr(st.p(0.5) <= be.p(0.5)+15*time.Millisecond))
	add(stagedScenarioName, "staged request → ready max"+n, ms(st.p(1)), "ms", 0, 0, "", nil)
	if len(hookLat) > 0 {
		hk := sorted(hookLat)
		m := fmt.Sprintf(" (n=%d)", len(hk.lat))
		add(stagedScenarioName, "staged (http hook) request → ready p50"+m, ms(hk.p(0.5)), "ms", ms(be.p(0.5)), ms(hk.p(0.5))/ms(be.p(0.5)), "", nil)
		add(stagedScenarioName, "staged (http hook) request → ready max"+m, ms(hk.p(1)), "ms", 0, 0, "", nil)
		speed := ms(st.p(0.5)) / ms(hk.p(0.5))
		add(stagedScenarioName, "speed-up staged hook vs staged exec (p50, same run)", speed, "×", 0, 0, "≥ 8×", ptr(speed >= 8))
	}
	// Where the staged time goes: the provisioner's hop holds the exec, so
	// Greenroom's own overhead is the rest plus that hop beyond a bare exec.
	if a, p, d := h.split(stagedIDs); len(a) > 0 {
		m := fmt.Sprintf(" (n=%d)", len(a))
		add(stagedScenarioName, "staged p50 of which request → assigned written"+m, ms(quantile(a, 0.5)), "ms", 0, 0, "", nil)
		add(stagedScenarioName, "staged p50 of which assigned → ready written (delivery, assign exec, commit)"+m,
			ms(quantile(p, 0.5)), "ms", ms(be.p(0.5)), ms(quantile(p, 0.5))/ms(be.p(0.5)), "", nil)
		add(stagedScenarioName, "staged p50 of which ready written → received"+m, ms(quantile(d, 0.5)), "ms", 0, 0, "", nil)
	}
	hookHops(stagedScenarioName, "staged (http hook)", h.fineSplit(hookIDs), e.execs, hookSessions)
	if e.execs != nil {
		if x := e.execs.durations(stagedSessions); len(x) > 0 {
			add(stagedScenarioName, fmt.Sprintf("staged: the assign exec as the provisioner timed it, p50 (n=%d)", len(x)),
				ms(quantile(x, 0.5)), "ms", ms(be.p(0.5)), ms(quantile(x, 0.5))/ms(be.p(0.5)), "", nil)
		}
	}
	add(stagedScenarioName, "on-demand request → ready p50"+n, ms(od.p(0.5)), "ms", ms(bs.p(0.5)), ms(od.p(0.5))/ms(bs.p(0.5)), "", nil)
	add(stagedScenarioName, "on-demand request → ready max"+n, ms(od.p(1)), "ms", 0, 0, "", nil)
	speedup := ms(od.p(0.5)) / ms(st.p(0.5))
	add(stagedScenarioName, "speed-up staged vs on demand (p50)", speedup, "×", 0, 0, "≥ 20×", ptr(speedup >= 20))
	return nil
}

func sorted(d []time.Duration) stats {
	s := stats{n: len(d), lat: append([]time.Duration(nil), d...)}
	sort.Slice(s.lat, func(i, j int) bool { return s.lat[i] < s.lat[j] })
	return s
}

// bareCreateStart creates and starts a demo container (published on
// loopback) with the environment envVars and probes its readiness path
// every 50 ms, as the provisioner does, until it answers; it returns the
// time and the id.
func bareCreateStart(ctx context.Context, dc *dockerclient.Client, label string, envVars ...string) (time.Duration, string, error) {
	port := network.MustParsePort("8080/tcp")
	start := time.Now()
	c, err := dc.ContainerCreate(ctx, dockerclient.ContainerCreateOptions{
		Config: &container.Config{Image: demoImage, ExposedPorts: network.PortSet{port: {}},
			Env: envVars, Labels: map[string]string{"greenroom.bench": label}},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{port: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: ""}}},
			Resources: container.Resources{NanoCPUs: 100_000_000, Memory: 64 << 20}}})
	if err != nil {
		return 0, "", err
	}
	if _, err := dc.ContainerStart(ctx, c.ID, dockerclient.ContainerStartOptions{}); err != nil {
		return 0, c.ID, err
	}
	in, err := dc.ContainerInspect(ctx, c.ID, dockerclient.ContainerInspectOptions{})
	if err != nil {
		return 0, c.ID, err
	}
	b := in.Container.NetworkSettings.Ports[port]
	if len(b) == 0 {
		return 0, c.ID, errors.New("no published port")
	}
	url := "http://127.0.0.1:" + b[0].HostPort + "/healthz"
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !interrupted() {
		resp, err := hc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), c.ID, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, c.ID, errors.New("container did not answer within 30s")
}

// bareExecAssign runs the assign command in container id the way the
// provisioner's engine does (create, attach, read to EOF, inspect).
func bareExecAssign(ctx context.Context, dc *dockerclient.Client, id string) (time.Duration, error) {
	start := time.Now()
	ex, err := dc.ExecCreate(ctx, id, dockerclient.ExecCreateOptions{User: "root",
		Cmd: []string{"/demo-workspace", "assign", "--user", "x"}, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return 0, err
	}
	att, err := dc.ExecAttach(ctx, ex.ID, dockerclient.ExecAttachOptions{})
	if err != nil {
		return 0, err
	}
	_, err = stdcopy.StdCopy(io.Discard, io.Discard, att.Reader)
	att.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	for i := 0; i < 500; i++ {
		in, err := dc.ExecInspect(ctx, ex.ID, dockerclient.ExecInspectOptions{})
		if err != nil {
			return 0, err
		}
		if !in.Running {
			if in.ExitCode != 0 {
				return 0, fmt.Errorf("assign exited %d", in.ExitCode)
			}
			return time.Since(start), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, errors.New("exec still running after 5s")
}

// poolRefill: a new pool filled from zero, then a burst claims all of it
// and the pool returns to desired.
func poolRefill(e *env, size int, request requestFunc) error {
	if _, err := e.create("/api/v1/workspaces", e.workspace("demo-refill")); err != nil {
		return err
	}
	start := time.Now()
	scID, err := e.create("/api/v1/staging-configs", e.stagingConfig("demo-refill", size))
	if err != nil {
		return err
	}
	if _, err := e.waitStaged(scID, size, 180*time.Second); err != nil {
		return err
	}
	fill := time.Since(start)
	add(refillScenarioName, fmt.Sprintf("fill %d from zero", size), fill.Seconds(), "s", 0, 0, "", nil)

	burst := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	staged := 0
	for range size {
		wg.Go(func() {
			d, s, err := request("demo-refill")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = err
				return
			}
			lat = append(lat, d)
			if s.Origin == "staged" {
				staged++
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("burst: %w", firstErr)
	}
	if _, err := e.waitStaged(scID, size, 180*time.Second); err != nil {
		return err
	}
	back := time.Since(burst)
	b := sorted(lat)
	add(refillScenarioName, fmt.Sprintf("burst of %d: request → ready p50", size), ms(b.p(0.5)), "ms", 0, 0, "", nil)
	add(refillScenarioName, fmt.Sprintf("burst of %d: request → ready max", size), ms(b.p(1)), "ms", 0, 0, "", nil)
	add(refillScenarioName, fmt.Sprintf("burst of %d: served staged", size), float64(staged), "sessions", 0, 0, fmt.Sprintf("= %d", size), ptr(staged == size))
	add(refillScenarioName, fmt.Sprintf("back to %d after the burst", size), back.Seconds(), "s", 0, 0, "", nil)
	return nil
}

// hookHops reports where the time of the hook path's requests goes, hop by
// hop, p50 each: the assigner's claim, the relay of session.assigned to the
// bus, the provisioner (its consumer's delivery, loading the session, the
// hook, the transaction up to session.ready written) and the delivery of
// session.ready to the requester (the commit, the relay, the bus).
func hookHops(scenario, what string, f hopSplit, execs *execLog, sessionIDs []string) {
	if len(f.assign) == 0 {
		return
	}
	m := fmt.Sprintf(" (n=%d)", len(f.assign))
	row := func(hop string, d []time.Duration) {
		if len(d) > 0 {
			add(scenario, what+" p50 of which "+hop+m, ms(quantile(d, 0.5)), "ms", 0, 0, "", nil)
		}
	}
	row("request → assigned written (assigner)", f.assign)
	row("assigned written → on the bus (commit, the assigner's publish)", f.relay)
	row("on the bus → ready written (provisioner)", f.handling)
	if execs != nil {
		row("  provisioner: load the session", execs.pick(sessionIDs, func(h handoff) time.Duration { return h.load }))
		row("  provisioner: the hook", execs.pick(sessionIDs, func(h handoff) time.Duration { return h.hook }))
		row("  provisioner: commit running + session.ready", execs.pick(sessionIDs, func(h handoff) time.Duration { return h.commit }))
		row("  provisioner: whole handling", execs.pick(sessionIDs, func(h handoff) time.Duration { return h.handled }))
	}
	row("ready written → received (commit, the provisioner's publish, bus)", f.delivery)
}
