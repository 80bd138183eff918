package bench

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
)

const footprintScenarioName = "footprint"

// footprintServices run as processes of their own so that each has its own
// RSS and CPU time, while config+assigner are driven at saturation. The
// provisioner is not among them: that phase seeds staged rows without
// containers, which it would audit as gone. It is measured in an
// environment of its own, filling a pool (provisionerFootprint).
var footprintServices = []string{"config", "assigner", "expiry"}

// footprintScenario builds the services, runs them as processes against a
// fresh database and JetStream, reads each one's RSS idle, drives the bus
// at saturation through config+assigner and reads RSS and CPU again; then,
// in a second fresh environment, reads the provisioner's RSS idle and its
// RSS and CPU while it fills a pool.
func footprintScenario(quick bool) error {
	n, poolN := 5000, 20
	if quick {
		n, poolN = 2000, 10
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "greenroom-bench-bin-")
	if err != nil {
		return err
	}
	// GREENROOM_BENCH_KEEP=1 keeps the binaries and their logs.
	if os.Getenv("GREENROOM_BENCH_KEEP") == "" {
		defer os.RemoveAll(bin)
	} else {
		fmt.Fprintf(os.Stderr, "bench: service binaries and logs in %s\n", bin)
	}
	args := []string{"build", "-o", bin}
	for _, s := range append(footprintServices, "provisioner") {
		args = append(args, "./services/"+s)
	}
	build := exec.Command("go", args...)
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the services: %w", err)
	}
	if err := assignerFootprint(bin, n); err != nil || interrupted() {
		return err
	}
	return provisionerFootprint(bin, poolN)
}

// assignerFootprint runs footprintServices from bin, reads their RSS idle,
// then drives n assignments at saturation and reads RSS and CPU again.
func assignerFootprint(bin string, n int) error {
	e, err := startEnv(envBare)
	if err != nil {
		return err
	}
	defer e.close()
	procs := map[string]*exec.Cmd{}
	for _, s := range footprintServices {
		if procs[s], err = startService(e, bin, s); err != nil {
			return err
		}
	}

	// Idle: a few seconds after start, nothing configured.
	time.Sleep(3 * time.Second)
	for _, s := range footprintServices {
		rss, _ := procRSS(procs[s].Process.Pid)
		mib := float64(rss) / (1 << 20)
		add(footprintScenarioName, s+" RSS idle", mib, "MiB", 0, 0, "< 50 MiB", ptr(mib < 50))
	}

	// Saturation through config + assigner (no provisioner: staged rows
	// without containers, as in the assignment scenario).
	zoneID, agentID, err := e.fixture()
	if err != nil {
		return err
	}
	wsID, err := e.create("/api/v1/workspaces", e.workspace("demo"))
	if err != nil {
		return err
	}
	scID, err := e.create("/api/v1/staging-configs", e.stagingConfig("demo", 1))
	if err != nil {
		return err
	}
	if err := seedStaged(e, n+100, wsID, zoneID, agentID, scID); err != nil {
		return err
	}
	nc, err := nats.Connect(e.NatsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	w, err := newWatcher(nc, events.TypeSessionAssigned)
	if err != nil {
		return err
	}
	defer w.close()
	cl, err := client.New(nc, client.WithSource("greenroom/bench"))
	if err != nil {
		return err
	}
	defer cl.Close()
	publish := e.requestPublisher(cl)
	if _, err := w.offered(50, 100, publish); err != nil { // warm-up
		return err
	}
	before := map[string]float64{}
	for _, s := range footprintServices {
		before[s], _ = procCPU(procs[s].Process.Pid)
	}
	st, err := w.offered(n, 0, publish)
	if err != nil {
		return err
	}
	done := len(st.lat)
	for _, s := range footprintServices {
		pid := procs[s].Process.Pid
		rss, peak := procRSS(pid)
		add(footprintScenarioName, s+" RSS after saturation", float64(rss)/(1<<20), "MiB", 0, 0, "", nil)
		add(footprintScenarioName, s+" peak RSS (VmHWM)", float64(peak)/(1<<20), "MiB", 0, 0, "", nil)
		if cpu, err := procCPU(pid); err == nil && done > 0 {
			add(footprintScenarioName, s+" CPU per 1,000 assignments", (cpu-before[s])*1000/float64(done), "s", 0, 0, "", nil)
		}
	}
	add(footprintScenarioName, fmt.Sprintf("saturation rate (services as processes, n=%d)", done), st.rate, "/s", 0, 0, "", nil)
	return nil
}

// provisionerFootprint runs config and the provisioner from bin in an
// environment of their own, reads the provisioner's RSS idle, then its RSS
// and CPU while it fills a pool of n containers that start at once. The
// pool is then emptied; the containers carry this database's deployment
// id, by which whatever is left is removed at the end.
func provisionerFootprint(bin string, n int) error {
	e, err := startEnv(envBare)
	if err != nil {
		return err
	}
	defer e.close()
	var deployment string
	if err := e.DB.Get(&deployment, `SELECT id FROM deployment`); err != nil {
		return err
	}
	label := "greenroom.deployment=" + deployment
	e.undo = append(e.undo, func() { removeContainers(label) })
	if _, err := startService(e, bin, "config"); err != nil {
		return err
	}
	prov, err := startService(e, bin, "provisioner")
	if err != nil {
		return err
	}
	pid := prov.Process.Pid

	time.Sleep(3 * time.Second) // idle, as for the others
	rss, _ := procRSS(pid)
	mib := float64(rss) / (1 << 20)
	add(footprintScenarioName, "provisioner RSS idle", mib, "MiB", 0, 0, "< 50 MiB", ptr(mib < 50))

	if _, _, err := e.fixture(); err != nil {
		return err
	}
	ws := e.workspace("demo-fast")
	ws["run_config"] = map[string]any{"environment": map[string]any{"GREENROOM_DEMO_INIT_DELAY": "0s"}}
	if _, err := e.create("/api/v1/workspaces", ws); err != nil {
		return err
	}
	before, err := procCPU(pid)
	if err != nil {
		return err
	}
	scID, err := e.create("/api/v1/staging-configs", e.stagingConfig("demo-fast", n))
	if err != nil {
		return err
	}
	// Not e.waitStaged: after an interrupt (Ctrl-C also stops the
	// services) it would wait out its timeout.
	if !until(180*time.Second, func() bool { return e.staged(scID) == n }) {
		if interrupted() {
			return nil
		}
		return fmt.Errorf("staging config %s not at %d staged within 180s (at %d)", scID, n, e.staged(scID))
	}
	cpu, err := procCPU(pid)
	if err != nil {
		return err
	}
	rss, peak := procRSS(pid)
	add(footprintScenarioName, fmt.Sprintf("provisioner RSS while filling a pool of %d", n), float64(rss)/(1<<20), "MiB", 0, 0, "", nil)
	add(footprintScenarioName, "provisioner peak RSS (VmHWM)", float64(peak)/(1<<20), "MiB", 0, 0, "", nil)
	add(footprintScenarioName, "provisioner CPU per container staged", (cpu-before)/float64(n), "s", 0, 0, "", nil)

	// Empty the pool through the provisioner itself; removing by label at
	// the end only catches what it left.
	status, out, err := e.call(http.MethodPatch, "/api/v1/staging-configs/"+scID, map[string]any{"desired_sessions": 0})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("PATCH staging config: %d %v", status, out)
	}
	left := -1
	gone := func() bool { left, err = countContainers(label); return err != nil || left == 0 }
	if !until(60*time.Second, gone) && !interrupted() {
		note("footprint: %d containers of the pool left 60 s after it was emptied; removed by label", left)
	}
	return err
}

// until checks cond every 50 ms until it holds, timeout passes or the bench
// is interrupted, and reports whether it held.
func until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !interrupted() {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// startService runs the binary of service s from bin against e until e is
// closed, its output appended to bin/<s>.log, and waits until it is ready.
// The config service's address becomes e's API.
func startService(e *env, bin, s string) (*exec.Cmd, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(bin, s+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(bin, s))
	cmd.Env = append(os.Environ(), "GREENROOM_DATABASE_URL="+e.DBURL, "GREENROOM_NATS_URL="+e.NatsURL,
		"GREENROOM_HTTP_ADDR="+addr, "GREENROOM_ADMIN_TOKEN="+e.Token, "GREENROOM_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", s, err)
	}
	e.cancel = append(e.cancel, func() { stopProcess(cmd); logf.Close() })
	if s == "config" {
		e.apiURL = "http://" + addr
	}
	if err := waitHTTP("http://"+addr+"/readyz", 30*time.Second); err != nil {
		return nil, fmt.Errorf("%s not ready: %w (log %s)", s, err, logf.Name())
	}
	return cmd, nil
}

// countContainers counts the containers, running or not, labelled label
// ("key=value").
func countContainers(label string) (int, error) {
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output()
	if err != nil {
		return 0, fmt.Errorf("listing containers %s: %w", label, err)
	}
	return len(strings.Fields(string(out))), nil
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", err
	}
	w := strings.TrimSpace(string(out))
	if w == "" || w == "off" {
		return "", fmt.Errorf("run from the repository (go.work not found)")
	}
	return filepath.Dir(w), nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(url string, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) && !interrupted() {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %s: %v", timeout, last)
}

// stopProcess sends SIGTERM, and SIGKILL after 15 s.
func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// procRSS returns VmRSS and VmHWM of pid in bytes.
func procRSS(pid int) (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			peak = kb * 1024
		}
	}
	return rss, peak
}

// procCPU returns the user+system CPU seconds of pid (USER_HZ = 100).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil
}
