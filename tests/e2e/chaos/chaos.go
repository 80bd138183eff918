// Package chaos is Greenroom's fault matrix (`make chaos`, and a short form
// in `make test`): it builds the service binaries, runs 2 replicas of every
// service and 3 assigners as processes on loopback against its own
// nats-server process and a fresh database on the local PostgreSQL, drives
// steady session requests through the bus and the HTTP API, injects one
// fault after another (kill -9, SIGSTOP past AckWait, nats-server killed
// and restarted, poison messages, SIGTERM under load, a black-hole Docker
// endpoint), and after each lets the system settle and checks the
// invariants of issue 15: every accepted request has exactly one outcome in
// the stream, no session is assigned twice and no container serves two
// sessions, every acknowledged publish is in the stream, staged counts
// return to desired, and no container without a live session remains.
package chaos

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/nettest"
)

// Options is one run.
type Options struct {
	// Faults are the faults to inject, in order (names of AllFaults);
	// empty means ShortFaults with Short, else AllFaults.
	Faults []string
	// Short is the form of `make test`: less load, shorter phases.
	Short bool
	// Rate is requests per second during a phase (default 1.5);
	// one in HTTPEvery goes through the HTTP API (default 3).
	Rate      float64
	HTTPEvery int
	// Staged is the staging config's desired_sessions (default 4).
	Staged int
	// Settle bounds how long a phase may take to satisfy the invariants
	// after its load stops (default 120 s).
	Settle time.Duration
	// WorkDir keeps binaries, logs and the NATS store; a temporary
	// directory (removed after a clean run) when empty.
	WorkDir string
	// Log receives progress lines (os.Stderr when nil).
	Log io.Writer
}

// AllFaults are the faults of the long form, in the order they run.
var AllFaults = []string{"baseline", "kill9-assigner", "kill9-assigner-before-commit", "kill9-assigner-after-commit",
	"sigstop-assigner", "nats-restart", "kill9-provisioner-creating",
	"poison", "sigterm-under-load", "postgres-restart", "blackhole-docker"}

// ShortFaults are the faults of the short form.
var ShortFaults = []string{"kill9-assigner-before-commit", "kill9-assigner-after-commit", "nats-restart", "poison"}

// Phase is one fault's row of the table.
type Phase struct {
	Fault      string         `json:"fault"`
	Notes      string         `json:"notes,omitempty"`
	Sent       int            `json:"requests_sent"`
	Bus        int            `json:"via_bus"`
	HTTP       int            `json:"via_http"`
	Accepted   int            `json:"accepted"`
	Refused    int            `json:"refused"`
	Unanswered int            `json:"unknown"`
	Ready      int            `json:"ready"`
	Failed     map[string]int `json:"failed"` // by reason
	NoOutcome  int            `json:"no_outcome"`
	Violations []Violation    `json:"violations"`
	Settled    string         `json:"settled_in"`
	Duration   string         `json:"duration"`
	Error      string         `json:"error,omitempty"`
}

// Report is a run's result.
type Report struct {
	Started     time.Time      `json:"started"`
	Duration    string         `json:"duration"`
	Short       bool           `json:"short"`
	Replicas    map[string]int `json:"replicas"`
	Phases      []Phase        `json:"phases"`
	Violations  int            `json:"violations"`
	DeadLetters int            `json:"dead_letters"`
	WorkDir     string         `json:"work_dir,omitempty"`
}

// OK is true when no phase broke an invariant or failed.
func (r *Report) OK() bool {
	if r.Violations > 0 {
		return false
	}
	for _, p := range r.Phases {
		if p.Error != "" {
			return false
		}
	}
	return len(r.Phases) > 0
}

type runner struct {
	opts Options
	c    *cluster
	load *loader
	idx  *streamIndex
	logf func(string, ...any)
	seen map[string]bool // violations already reported by an earlier phase
}

func (o *Options) defaults() {
	if len(o.Faults) == 0 {
		o.Faults = AllFaults
		if o.Short {
			o.Faults = ShortFaults
		}
	}
	if o.Rate == 0 {
		// Each request costs a container create and, once it is
		// destroyed, a remove: on 2 cores the engine keeps up with about
		// 1.5 a second, so that failures measure the faults, not the
		// machine.
		o.Rate = 1.5
	}
	if o.HTTPEvery == 0 {
		o.HTTPEvery = 3
	}
	if o.Staged == 0 {
		o.Staged = 4
	}
	if o.Settle == 0 {
		o.Settle = 120 * time.Second
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
}

// Run sets the deployment up, runs the phases and tears everything down
// (processes, containers, database) before it returns, also when ctx is
// cancelled (an interrupt). The error is for a run that could not be made;
// broken invariants are in the report.
func Run(ctx context.Context, opts Options) (rep *Report, err error) {
	opts.defaults()
	for _, f := range opts.Faults {
		if faults[f] == nil {
			return nil, fmt.Errorf("unknown fault %q (known: %s)", f, strings.Join(AllFaults, ", "))
		}
	}
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(opts.Log, "chaos %s: %s\n", time.Since(start).Truncate(100*time.Millisecond), fmt.Sprintf(format, args...))
	}
	repo, err := repoRoot()
	if err != nil {
		return nil, err
	}
	workDir, keep := opts.WorkDir, opts.WorkDir != ""
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "greenroom-chaos-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(workDir, "logs"), 0o755); err != nil {
		return nil, err
	}
	c := &cluster{opts: opts, logf: logf, repo: repo, workDir: workDir, token: "chaos-" + uuid.NewString()}
	rep = &Report{Started: start, Short: opts.Short, WorkDir: workDir, Replicas: map[string]int{}}
	for _, s := range serviceNames {
		rep.Replicas[s] = replicaCount(s)
	}
	r := &runner{opts: opts, c: c, idx: newStreamIndex(), logf: logf, seen: map[string]bool{}}
	defer func() {
		logf("cleaning up: services, nats-server, containers, database")
		if r.load != nil {
			r.load.close()
		}
		c.close()
		rep.Duration = time.Since(start).Truncate(time.Second).String()
		if err == nil && rep.OK() && !keep {
			_ = os.RemoveAll(workDir)
			rep.WorkDir = ""
		} else {
			logf("logs kept in %s/logs", workDir)
		}
	}()

	logf("building the services, nats-server and the demo image (work dir %s)", workDir)
	if err := c.build(ctx); err != nil {
		return rep, err
	}
	if err := c.startNATS(ctx); err != nil {
		return rep, err
	}
	if slices.Contains(opts.Faults, "postgres-restart") {
		// Restarting the machine's server would break whoever else uses it.
		if c.pg, err = startPrivatePG(ctx, workDir); err != nil {
			return rep, err
		}
		logf("PostgreSQL of this run's own on 127.0.0.1:%d (for postgres-restart)", c.pg.port)
	}
	if err := c.createDatabase(ctx); err != nil {
		return rep, err
	}
	logf("database %s, deployment %s, nats-server on %s", c.dbName, c.deploymentID, c.natsURL())
	if err := c.startServices(ctx); err != nil {
		return rep, err
	}
	logf("started %d assigners and 2 replicas of config, provisioner, expiry, gateway", replicaCount("assigner"))
	if r.load, err = newLoader(c); err != nil {
		return rep, err
	}
	if err := c.loadConfig(ctx); err != nil {
		return rep, err
	}
	logf("configuration loaded; %d sessions staged", opts.Staged)

	for _, name := range opts.Faults {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		p := r.phase(ctx, name)
		rep.Phases = append(rep.Phases, p)
		rep.Violations += len(p.Violations)
		logf("%s: %d sent, %d ready, %d failed, %d violations (settled in %s)%s", p.Fault, p.Sent, p.Ready,
			sum(p.Failed), len(p.Violations), p.Settled, errSuffix(p.Error))
		for _, v := range p.Violations {
			logf("  VIOLATION %s %s: %s", v.Invariant, v.Subject, v.Detail)
		}
	}
	rep.DeadLetters = r.idx.dead
	return rep, nil
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return "; ERROR: " + e
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// phase runs one fault: load, fault, more load, then settle and check.
func (r *runner) phase(ctx context.Context, name string) Phase {
	began := time.Now()
	p := Phase{Fault: name, Failed: map[string]int{}}
	warm, after := 6*time.Second, 12*time.Second
	if r.opts.Short {
		warm, after = 3*time.Second, 6*time.Second
	}
	r.logf("phase %s: load at %.1f/s", name, r.opts.Rate)
	r.load.start(name, r.opts.Rate, r.opts.HTTPEvery)
	sleep(ctx, warm)
	var faultViolations []Violation
	notes, err := faults[name](ctx, r, &faultViolations)
	p.Notes = notes
	if err != nil {
		p.Error = err.Error()
		r.logf("phase %s: fault: %v", name, err)
	}
	sleep(ctx, after)
	r.load.stop()
	// Destroy what the load left running (the ready events the destroyer
	// missed while NATS was down), so that only staged containers remain.
	r.destroyRunning(ctx)

	settleStart := time.Now()
	lastSay := settleStart
	var vs []Violation
	for {
		vs, err = r.check(ctx)
		if err != nil {
			r.logf("phase %s: checking: %v", name, err)
		}
		if (err == nil && len(vs) == 0) || time.Since(settleStart) > r.opts.Settle || ctx.Err() != nil {
			break
		}
		if n := len(vs); n > 0 && time.Since(lastSay) > 10*time.Second {
			lastSay = time.Now()
			r.logf("phase %s: settling, %d pending, e.g. %s %s: %s", name, n, vs[0].Invariant, vs[0].Subject, vs[0].Detail)
		}
		r.destroyRunning(ctx)
		sleep(ctx, 2*time.Second)
	}
	if err != nil && p.Error == "" {
		p.Error = "checking: " + err.Error()
	}
	p.Settled = time.Since(settleStart).Truncate(100 * time.Millisecond).String()
	vs = append(vs, faultViolations...)
	for _, v := range vs {
		if !r.seen[v.key()] {
			r.seen[v.key()] = true
			p.Violations = append(p.Violations, v)
		}
	}
	// The phase's requests and their outcomes.
	for _, q := range r.load.requests() {
		if q.Phase != name {
			continue
		}
		p.Sent++
		if q.Via == "http" {
			p.HTTP++
		} else {
			p.Bus++
		}
		switch q.Status {
		case accepted:
			p.Accepted++
		case refused:
			p.Refused++
		default:
			p.Unanswered++
		}
		o := r.idx.outcomes[q.ID]
		switch {
		case o == nil || o.count() == 0:
			p.NoOutcome++
		case len(o.ready) > 0:
			p.Ready++
		default:
			for reason := range o.failed {
				p.Failed[reason]++
			}
		}
	}
	if p.Violations == nil {
		p.Violations = []Violation{}
	}
	p.Duration = time.Since(began).Truncate(100 * time.Millisecond).String()
	return p
}

// destroyRunning destroys every session in running through the API.
func (r *runner) destroyRunning(ctx context.Context) {
	rows, err := r.c.db.QueryContext(ctx, `SELECT id FROM sessions WHERE status = 'running'`)
	if err != nil {
		return
	}
	var ids []string
	for rows.Next() {
		var id string
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		r.load.destroy(ctx, id)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// faultFunc injects a fault while the load runs. It may add violations of
// its own (a replica that did not stop gracefully).
type faultFunc func(ctx context.Context, r *runner, vs *[]Violation) (notes string, err error)

var faults = map[string]faultFunc{
	"baseline":                     func(context.Context, *runner, *[]Violation) (string, error) { return "no fault", nil },
	"kill9-assigner":               kill9Assigner,
	"kill9-assigner-before-commit": kill9AssignerBeforeCommit,
	"kill9-assigner-after-commit":  kill9AssignerAfterCommit,
	"sigstop-assigner":             sigstopAssigner,
	"nats-restart":                 natsRestart,
	"kill9-provisioner-creating":   kill9ProvisionerCreating,
	"poison":                       func(ctx context.Context, r *runner, _ *[]Violation) (string, error) { return r.load.poison(ctx) },
	"sigterm-under-load":           sigtermUnderLoad,
	"postgres-restart":             postgresRestart,
	"blackhole-docker":             blackholeDocker,
}

// kill9Assigner kills one assigner with SIGKILL under load (some requests
// in its hands before their claim commits, some after), then restarts it.
func kill9Assigner(ctx context.Context, r *runner, _ *[]Violation) (string, error) {
	// A burst so that the replica holds requests when it dies.
	r.load.burst(6)
	time.Sleep(50 * time.Millisecond)
	p := r.c.replicas["assigner"][0]
	pid := p.pid()
	p.kill9()
	sleep(ctx, 3*time.Second)
	if err := r.c.restart(ctx, "assigner", 0); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGKILL assigner-0 (pid %d) 50 ms into a burst of 6, restarted after 3 s", pid), nil
}

// holdClaims makes assigner-0 hold claim transactions that cannot commit:
// it locks the outbox against inserts (every claim writes its events
// there, last, in its transaction) and sends bursts until assigner-0 has
// transactions waiting for that lock. The caller releases the lock
// (Rollback).
func holdClaims(ctx context.Context, r *runner) (*sql.Tx, int, error) {
	lock, err := r.c.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, err
	}
	if _, err := lock.ExecContext(ctx, `LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		_ = lock.Rollback()
		return nil, 0, err
	}
	var waiting int
	for range 5 {
		r.load.burst(6)
		_ = poll(ctx, 5*time.Second, "assigner-0 waiting to write a claim's events", func() bool {
			waiting = r.c.backends(ctx, assigner0App, `wait_event_type = 'Lock'`)
			return waiting > 0
		})
		if waiting > 0 {
			return lock, waiting, nil
		}
	}
	_ = lock.Rollback()
	return nil, 0, errors.New("assigner-0 took no request of 5 bursts")
}

// kill9AssignerBeforeCommit kills assigner-0 with SIGKILL while claim
// transactions of its are open, their sessions claimed but their events
// not written: none of them commits (PostgreSQL rolls each back when its
// client is gone), and the requests are redelivered to the others.
func kill9AssignerBeforeCommit(ctx context.Context, r *runner, _ *[]Violation) (string, error) {
	lock, waiting, err := holdClaims(ctx, r)
	if err != nil {
		return "", err
	}
	p := r.c.replicas["assigner"][0]
	pid := p.pid()
	p.kill9()
	_ = lock.Rollback()
	sleep(ctx, 3*time.Second)
	if err := r.c.restart(ctx, "assigner", 0); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGKILL assigner-0 (pid %d) with %d claim transactions open, before their commit; restarted after 3 s", pid, waiting), nil
}

// kill9AssignerAfterCommit kills assigner-0 with SIGKILL after claim
// transactions of its committed and before it published their events or
// acknowledged their requests: its link to nats-server is held (the gate)
// while they commit. The events wait in the outbox for the other
// assigners' relays; the redelivered requests find their sessions.
func kill9AssignerAfterCommit(ctx context.Context, r *runner, _ *[]Violation) (string, error) {
	lock, waiting, err := holdClaims(ctx, r)
	if err != nil {
		return "", err
	}
	r.c.gate.pause()
	defer r.c.gate.resume()
	_ = lock.Rollback()
	if err := poll(ctx, 20*time.Second, "assigner-0's claims committed", func() bool {
		return r.c.backends(ctx, assigner0App, `state <> 'idle'`) == 0
	}); err != nil {
		return "", err
	}
	p := r.c.replicas["assigner"][0]
	pid := p.pid()
	p.kill9()
	// What it had written and the gate held dies with it.
	r.c.gate.drop()
	r.c.gate.resume()
	sleep(ctx, 3*time.Second)
	if err := r.c.restart(ctx, "assigner", 0); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGKILL assigner-0 (pid %d) after %d claim transactions committed, their events unpublished and requests unacknowledged (its NATS link held); restarted after 3 s", pid, waiting), nil
}

// sigstopAssigner freezes one assigner past the consumer's AckWait (30 s):
// its unacknowledged requests are redelivered to the others, and when it
// resumes it finishes them too.
func sigstopAssigner(ctx context.Context, r *runner, _ *[]Violation) (string, error) {
	p := r.c.replicas["assigner"][1]
	r.load.burst(6)
	time.Sleep(30 * time.Millisecond)
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return "", err
	}
	sleep(ctx, 35*time.Second)
	if err := p.signal(syscall.SIGCONT); err != nil {
		return "", err
	}
	return "SIGSTOP assigner-1 during a burst of 6, SIGCONT after 35 s (AckWait 30 s)", nil
}

// natsRestart kills nats-server with SIGKILL and starts it again on the same
// port and store after 5 s.
func natsRestart(ctx context.Context, r *runner, _ *[]Violation) (string, error) {
	r.c.nats.kill9()
	sleep(ctx, 5*time.Second)
	t := time.Now()
	if err := r.c.startNATS(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGKILL nats-server, down 5 s, JetStream back %s after restart", time.Since(t).Truncate(10*time.Millisecond)), nil
}

// kill9ProvisionerCreating sends a burst that empties the staged pool, waits
// until containers are being created (sessions in provisioning), and kills
// a provisioner with SIGKILL; restarted after 3 s.
func kill9ProvisionerCreating(ctx context.Context, r *runner, _ *[]Violation) (string, error) {
	r.load.burst(r.opts.Staged + 8)
	var n int
	_ = poll(ctx, 15*time.Second, "provisioning sessions", func() bool {
		_ = r.c.db.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE status = 'provisioning'`).Scan(&n)
		return n >= 3
	})
	p := r.c.replicas["provisioner"][0]
	p.kill9()
	sleep(ctx, 3*time.Second)
	if err := r.c.restart(ctx, "provisioner", 0); err != nil {
		return "", err
	}
	return fmt.Sprintf("burst of %d, SIGKILL provisioner-0 with %d sessions provisioning, restarted after 3 s", r.opts.Staged+8, n), nil
}

// sigtermUnderLoad sends SIGTERM to one replica of every service at once
// under load: each must drain (finish or hand back its work) and exit 0
// within its shutdown timeout; then they are restarted.
func sigtermUnderLoad(ctx context.Context, r *runner, vs *[]Violation) (string, error) {
	r.load.burst(6)
	targets := map[string]int{"config": 1, "assigner": 2, "provisioner": 1, "expiry": 0, "gateway": 1}
	names := make([]string, 0, len(targets))
	for svc, i := range targets {
		if err := r.c.replicas[svc][i].signal(syscall.SIGTERM); err != nil {
			return "", err
		}
		names = append(names, r.c.replicas[svc][i].name)
	}
	sort.Strings(names)
	var slowest time.Duration
	t := time.Now()
	for svc, i := range targets {
		p := r.c.replicas[svc][i]
		err, ok := p.wait(30 * time.Second)
		switch {
		case !ok:
			*vs = append(*vs, Violation{Invariant: invGraceful, Subject: p.name, Detail: "still running 30 s after SIGTERM (shutdown timeout 20 s)"})
			p.kill9()
		case err != nil:
			*vs = append(*vs, Violation{Invariant: invGraceful, Subject: p.name, Detail: fmt.Sprintf("exited with %v after SIGTERM, want 0", err)})
		}
		slowest = max(slowest, time.Since(t))
	}
	for svc, i := range targets {
		if err := r.c.restart(ctx, svc, i); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("SIGTERM %s at once; all exited within %s; restarted", strings.Join(names, ", "), slowest.Truncate(100*time.Millisecond)), nil
}

// postgresRestart crashes the run's own PostgreSQL server (immediate
// shutdown, as a crash: recovery from the WAL at the next start) under
// load, and starts it again after 5 s.
func postgresRestart(ctx context.Context, r *runner, _ *[]Violation) (string, error) {
	if r.c.pg == nil {
		return "", fmt.Errorf("postgres-restart needs the run's own PostgreSQL server")
	}
	r.c.pg.crash()
	sleep(ctx, 5*time.Second)
	t := time.Now()
	if err := r.c.pg.start(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("PostgreSQL immediate shutdown (SIGQUIT, a crash) under load, down 5 s, accepting again %s after restart",
		time.Since(t).Truncate(10*time.Millisecond)), nil
}

// blackholeDocker adds, beside the healthy agent, an agent whose Docker
// endpoint accepts TCP connections and never answers, for the phase; it is
// disabled afterwards. Sessions placed there fail (provisioning timeout);
// the healthy agent's sessions must not be delayed into failure.
func blackholeDocker(ctx context.Context, r *runner, _ *[]Violation) (string, error) {
	l, err := nettest.ListenBlackHole()
	if err != nil {
		return "", err
	}
	r.c.blackhole = l
	body := map[string]any{"name": blackholeAg, "zone": zoneName, "docker_endpoint": l.Endpoint(),
		"cores": 64, "memory_mb": 65536, "enabled": true}
	if _, _, err := r.c.api(ctx, 0, "POST", "/api/v1/agents", body, nil); err != nil {
		return "", err
	}
	sleep(ctx, 20*time.Second)
	if _, _, err := r.c.api(ctx, 0, "PATCH", "/api/v1/agents/"+blackholeAg, map[string]any{"enabled": false}, nil); err != nil {
		return "", fmt.Errorf("disabling the black-hole agent: %w", err)
	}
	return "agent " + blackholeAg + " at " + l.Addr().String() + " (accepts, never answers) for 20 s beside the healthy one, then disabled", nil
}

// Table writes the fault table.
func (rep *Report) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\trequests sent (bus/http)\taccepted\tready\tfailed\tno outcome\tviolations\tsettled in")
	for _, p := range rep.Phases {
		failed := fmt.Sprint(sum(p.Failed))
		if len(p.Failed) > 0 {
			var parts []string
			for _, k := range sortedKeys(p.Failed) {
				parts = append(parts, fmt.Sprintf("%s %d", k, p.Failed[k]))
			}
			failed += " (" + strings.Join(parts, ", ") + ")"
		}
		viol := fmt.Sprint(len(p.Violations))
		if p.Error != "" {
			viol += " + error"
		}
		fmt.Fprintf(tw, "%s\t%d (%d/%d)\t%d\t%d\t%s\t%d\t%s\t%s\n", p.Fault, p.Sent, p.Bus, p.HTTP, p.Accepted, p.Ready, failed,
			p.NoOutcome, viol, p.Settled)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "total violations: %d; dead letters: %d; run took %s\n", rep.Violations, rep.DeadLetters, rep.Duration)
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// WriteJSON writes the report to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
