package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// TestAssignerReplicasComeAndGoUnderLoadAndLoseNothing is issue 15's
// "scaling one service" as processes: the built binaries of the config
// service and three assigners share one PostgreSQL and one JetStream, a
// steady stream of session requests arrives over the bus and over the HTTP
// API, two assigners get SIGTERM in the middle of it (they drain and exit
// 0) and a new one starts. Then every request has exactly one decision in
// the stream — session.assigned (a staged session claimed),
// provision.requested (on demand) or session.failed —, nothing was
// dead-lettered, and no staged session went to two requests.
//
// No containers: there is no provisioner, so the decisions are the
// assigners' own (the staged sessions are rows; a claimed one stays
// assigning), and a third of the requests name a workspace that does not
// exist, which fails at once.
func TestAssignerReplicasComeAndGoUnderLoadAndLoseNothing(t *testing.T) {
	const (
		staged   = 120                   // staged sessions: claims go on until after the assigners change
		interval = 15 * time.Millisecond // one request per interval, alternating bus and HTTP
		load     = 6 * time.Second       // how long requests keep coming
	)
	env := apptest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t0 := time.Now()
	bin := buildBinaries(t, "services/assigner", "services/config")
	t.Logf("built in %s", time.Since(t0).Round(time.Millisecond))

	// One zone, workspace demo, group everyone, users, a staging config and
	// its staged sessions, all started with the permissions the group gives.
	zone, ws, group, cfg := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	env.DB.MustExec(`INSERT INTO zones (id, name, search_alternate_zones, priority, allow_origin_domain, upstream_auth_address)
		VALUES ($1, 'zone-a', false, 1, 'example.test', 'example.test')`, zone)
	env.DB.MustExec(`INSERT INTO workspaces (id, name, image, cores, memory_mb) VALUES ($1, 'demo', 'img', 0.25, 128)`, ws)
	env.DB.MustExec(`INSERT INTO groups (id, name, priority) VALUES ($1, 'everyone', 100)`, group)
	env.DB.MustExec(`INSERT INTO staging_configs (id, zone_id, workspace_id, desired_sessions, allow_audio, allow_clipboard_down,
		allow_clipboard_up, allow_downloads, allow_microphone, allow_uploads, allow_gamepad)
		VALUES ($1, $2, $3, $4, true, true, true, true, true, true, true)`, cfg, zone, ws, staged)
	users := []string{"alice", "bob", "carol", "dave"}
	for _, u := range users {
		id := uuid.NewString()
		env.DB.MustExec(`INSERT INTO users (id, username) VALUES ($1, $2)`, id, u)
		env.DB.MustExec(`INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)`, id, group)
	}
	all := events.Permissions{AllowAudio: true, AllowClipboardDown: true, AllowClipboardUp: true, AllowDownloads: true,
		AllowMicrophone: true, AllowUploads: true, AllowGamepad: true}
	stagedIDs := map[string]bool{}
	for range staged {
		s, err := sessions.Insert(ctx, env.DB, sessions.New{ID: uuid.NewString(), WorkspaceID: ws, ZoneID: zone,
			StagingConfigID: cfg, Origin: sessions.OriginStaged, Permissions: all, Cores: 0.25, MemoryMB: 128})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sessions.Transition(ctx, env.DB, s.ID, sessions.Provisioning, sessions.Staged, sessions.Change{}); err != nil {
			t.Fatal(err)
		}
		stagedIDs[s.ID] = true
	}

	// The test's own connection (it also creates the stream, as migrate would).
	deps := env.Deps(t, "e2e-scaling")
	cl, err := client.New(deps.NC)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	token := "e2e-scaling-" + uuid.NewString()
	procEnv := []string{
		"GREENROOM_DATABASE_URL=" + env.DatabaseURL,
		"GREENROOM_NATS_URL=" + env.NATS.ClientURL(),
		"GREENROOM_HTTP_ADDR=127.0.0.1:0",
		"GREENROOM_ADMIN_TOKEN=" + token,
		"GREENROOM_SHUTDOWN_TIMEOUT=20s",
		"GREENROOM_LOG_LEVEL=info",
	}
	configProc := startProcess(t, filepath.Join(bin, "config"), "config", procEnv)
	assigners := []*process{
		startProcess(t, filepath.Join(bin, "assigner"), "assigner-1", procEnv),
		startProcess(t, filepath.Join(bin, "assigner"), "assigner-2", procEnv),
		startProcess(t, filepath.Join(bin, "assigner"), "assigner-3", procEnv),
	}
	for _, p := range append([]*process{configProc}, assigners...) {
		p.waitReady(t)
	}
	t.Logf("config and 3 assigners ready at %s", time.Since(t0).Round(time.Millisecond))

	// The stream of requests: bus and HTTP in turn; on the bus, every third
	// names a workspace that does not exist (failed at once).
	var (
		mu   sync.Mutex
		sent = map[string]string{} // request_id → how it was sent
	)
	httpClient := &http.Client{Timeout: 10 * time.Second}
	send := func(n int) error {
		id := uuid.NewString()
		user := users[n%len(users)]
		if n%2 == 1 {
			body, _ := json.Marshal(map[string]string{"user": user, "workspace": "demo", "zone": "zone-a", "request_id": id})
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+configProc.addr+"/api/v1/sessions?wait=0s", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := httpClient.Do(req)
			if err != nil {
				return fmt.Errorf("POST /api/v1/sessions: %w", err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				return fmt.Errorf("POST /api/v1/sessions: %d, want 202", resp.StatusCode)
			}
			mu.Lock()
			sent[id] = "http"
			mu.Unlock()
			return nil
		}
		workspace, how := "demo", "bus"
		if n%3 == 0 {
			workspace, how = "no-such-workspace", "bus (unknown workspace)"
		}
		if _, _, err := cl.Publish(ctx, client.Request{RequestID: id, User: user, Workspace: workspace, Zone: "zone-a"}); err != nil {
			return fmt.Errorf("publishing a request: %w", err)
		}
		mu.Lock()
		sent[id] = how
		mu.Unlock()
		return nil
	}
	loadDone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		end := time.After(load)
		for n := 0; ; n++ {
			select {
			case <-end:
				loadDone <- nil
				return
			case <-tick.C:
			}
			if err := send(n); err != nil {
				loadDone <- err
				return
			}
		}
	}()

	// Mid-stream: SIGTERM to two assigners at once (they drain), then a
	// new one joins.
	time.Sleep(load / 3)
	var stopping sync.WaitGroup
	for _, p := range assigners[1:] {
		stopping.Add(1)
		go func() {
			defer stopping.Done()
			p.stopGracefully(t)
		}()
	}
	stopping.Wait()
	t.Logf("assigner-2 and assigner-3 stopped (SIGTERM) at %s", time.Since(configProc.started).Round(time.Millisecond))
	time.Sleep(load / 6)
	fourth := startProcess(t, filepath.Join(bin, "assigner"), "assigner-4", procEnv)
	fourth.waitReady(t)
	t.Logf("assigner-4 ready at %s", time.Since(configProc.started).Round(time.Millisecond))
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}

	// Every request's decision, read back from the stream (the audit log).
	mu.Lock()
	defer mu.Unlock()
	var decisions map[string][]decision
	var dead int
	deadline := time.Now().Add(60 * time.Second)
	for {
		decisions, dead = readDecisions(t, ctx, deps.JS)
		missing := 0
		for id := range sent {
			if len(decisions[id]) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("decisions read at %s", time.Since(t0).Round(time.Millisecond))

	counts := map[string]int{}
	claimedBy := map[string]string{} // staged session → request
	violations := 0
	for id, how := range sent {
		got := decisions[id]
		if len(got) != 1 {
			violations++
			t.Errorf("request %s (%s): %d decisions, want exactly 1: %+v", id, how, len(got), got)
			continue
		}
		d := got[0]
		counts[d.subject]++
		if d.subject == events.TypeSessionAssigned {
			if !stagedIDs[d.sessionID] {
				violations++
				t.Errorf("request %s assigned session %s, which is not one of the staged ones", id, d.sessionID)
			}
			if other, ok := claimedBy[d.sessionID]; ok {
				violations++
				t.Errorf("staged session %s claimed twice: by %s and %s", d.sessionID, other, id)
			}
			claimedBy[d.sessionID] = id
		}
		if how == "bus (unknown workspace)" && d.subject != events.TypeSessionFailed {
			violations++
			t.Errorf("request %s for an unknown workspace: %s, want session.failed", id, d.subject)
		}
	}
	for id := range decisions {
		if _, ok := sent[id]; !ok {
			violations++
			t.Errorf("a decision about request %s, which the test never sent", id)
		}
	}
	if dead != 0 {
		violations++
		t.Errorf("%d message(s) dead-lettered", dead)
	}
	// The rows agree: each claimed staged session names one request, and
	// the staged ones left are those nobody claimed.
	var rows []struct {
		ID        string  `db:"id"`
		Status    string  `db:"status"`
		RequestID *string `db:"request_id"`
	}
	if err := env.DB.Select(&rows, `SELECT id, status, request_id FROM sessions WHERE staging_config_id = $1`, cfg); err != nil {
		t.Fatal(err)
	}
	stillStaged := 0
	for _, r := range rows {
		switch {
		case r.Status == string(sessions.Staged):
			stillStaged++
			if _, ok := claimedBy[r.ID]; ok {
				violations++
				t.Errorf("session %s is still staged but was assigned to %s", r.ID, claimedBy[r.ID])
			}
		case r.RequestID == nil || claimedBy[r.ID] != *r.RequestID:
			violations++
			t.Errorf("session %s is %s for request %v, the stream says %q", r.ID, r.Status, r.RequestID, claimedBy[r.ID])
		}
	}
	if stillStaged+len(claimedBy) != staged {
		violations++
		t.Errorf("%d staged left + %d claimed, want %d", stillStaged, len(claimedBy), staged)
	}
	if len(claimedBy) == 0 || counts[events.TypeSessionFailed] == 0 {
		t.Errorf("the load did not exercise claims and failures: %v", counts)
	}
	t.Logf("requests sent %d (bus and HTTP); decisions: %d session.assigned (staged claimed, %d left staged), %d provision.requested, %d session.failed; dead-lettered %d; violations %d",
		len(sent), counts[events.TypeSessionAssigned], stillStaged, counts[events.TypeProvisionRequested], counts[events.TypeSessionFailed], dead, violations)
}

// decision is one assigner decision about a request, as the stream has it.
type decision struct {
	subject   string
	sessionID string
}

// readDecisions reads the whole stream's decisions (session.assigned,
// provision.requested, session.failed) by request id, and counts the
// dead-lettered messages.
func readDecisions(t *testing.T, ctx context.Context, js jetstream.JetStream) (map[string][]decision, int) {
	t.Helper()
	cons, err := js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.TypeSessionAssigned, events.TypeProvisionRequested, events.TypeSessionFailed,
			events.TypeDeadLetter + ".>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]decision{}
	dead := 0
	for pending := info.NumPending; pending > 0; {
		batch, err := cons.Fetch(int(min(pending, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if strings.HasPrefix(m.Subject(), events.TypeDeadLetter+".") {
				dead++
				continue
			}
			var ev struct {
				Data struct {
					RequestID string `json:"request_id"`
					SessionID string `json:"session_id"`
				} `json:"data"`
			}
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatalf("undecodable %s: %v", m.Subject(), err)
			}
			id := m.Headers().Get(events.HeaderRequestID)
			if id == "" {
				id = ev.Data.RequestID
			}
			out[id] = append(out[id], decision{subject: m.Subject(), sessionID: ev.Data.SessionID})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		pending -= uint64(n)
	}
	return out, dead
}

// process is one service binary run by a test: its JSON log kept, its
// HTTP address read from "http server listening", killed at the end.
type process struct {
	name    string
	cmd     *exec.Cmd
	addr    string
	started time.Time
	exited  chan error
	mu      sync.Mutex
	lines   []map[string]any
}

func startProcess(t *testing.T, path, name string, env []string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(path), started: time.Now(), exited: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				t.Logf("%s: %s", name, sc.Text())
				continue
			}
			p.mu.Lock()
			p.lines = append(p.lines, l)
			p.mu.Unlock()
			if l["msg"] == "http server listening" {
				addr, _ := l["addr"].(string)
				select {
				case listening <- addr:
				default:
				}
			}
		}
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
			}
		}
	})
	select {
	case p.addr = <-listening:
	case err := <-p.exited:
		t.Fatalf("%s exited before serving: %v", name, err)
	case <-time.After(90 * time.Second):
		t.Fatalf("%s did not start serving", name)
	}
	return p
}

func (p *process) waitReady(t *testing.T) {
	t.Helper()
	apptest.Eventually(t, 60*time.Second, p.name+" ready", func() bool {
		res, err := http.Get("http://" + p.addr + "/readyz")
		if err != nil {
			return false
		}
		_ = res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// stopGracefully sends SIGTERM and wants exit 0 and a graceful stop logged.
func (p *process) stopGracefully(t *testing.T) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Error(err)
		return
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM, want 0", p.name, err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("%s still running 60 s after SIGTERM", p.name)
		return
	}
	for _, l := range p.logLines() {
		if l["msg"] == "assigner stopped" && l["graceful"] == true {
			return
		}
	}
	t.Errorf("%s exited without logging a graceful stop", p.name)
}

func (p *process) logLines() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.lines...)
}

// TestScaleScriptRefusesWhatItCannotScale runs scripts/scale.sh (make
// scale) with a run directory of its own: config and gateway keep their
// published addresses, counts stay within 0 to 9, and without a make up
// deployment (no .run/services.env) it says so instead of starting
// anything.
func TestScaleScriptRefusesWhatItCannotScale(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "2"}, "scalable are assigner provisioner expiry"},
		{[]string{"gateway", "2"}, "scalable are assigner provisioner expiry"},
		{[]string{"assigner", "10"}, "want 0 to 9 replicas"},
		{[]string{"assigner", "two"}, "want 0 to 9 replicas"},
		{[]string{"assigner"}, "usage: scripts/scale.sh SERVICE N"},
		{[]string{"assigner", "2"}, "run make up first"},
	} {
		cmd := exec.Command("bash", append([]string{"../../scripts/scale.sh"}, tt.args...)...)
		cmd.Env = append(os.Environ(), "GREENROOM_RUN_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("scale.sh %v: %v, said %q; want an error saying %q", tt.args, err, out, tt.want)
		}
	}
	// With nothing running, the listing is empty and succeeds.
	cmd := exec.Command("bash", "../../scripts/scale.sh")
	cmd.Env = append(os.Environ(), "GREENROOM_RUN_DIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("scale.sh with no arguments: %v, %q", err, out)
	}
}
