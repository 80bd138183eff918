package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/apptest"
)

// TestEveryServiceBinaryStartsServesAndStopsGracefullyOnSIGTERM runs the
// service binaries as operators do, against a real PostgreSQL and
// JetStream: each one's main goes through the same steps (libs/app.Run),
// answers /readyz, and on SIGTERM stops every part within the shutdown
// timeout and exits 0, saying so in its log.
func TestEveryServiceBinaryStartsServesAndStopsGracefullyOnSIGTERM(t *testing.T) {
	env := apptest.New(t)
	services := []string{"assigner", "config", "provisioner", "expiry", "gateway"}
	var paths []string
	for _, s := range services {
		paths = append(paths, "services/"+s)
	}
	bin := buildBinaries(t, paths...)
	for _, s := range services {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			runUntilSIGTERM(t, filepath.Join(bin, s), s, env)
		})
	}
}

// logLine is what the test reads of a service's JSON log.
type logLine struct {
	Msg      string `json:"msg"`
	Addr     string `json:"addr"`
	Graceful *bool  `json:"graceful"`
}

func runUntilSIGTERM(t *testing.T, path, name string, env *apptest.Env) {
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(),
		"GREENROOM_DATABASE_URL="+env.DatabaseURL,
		"GREENROOM_NATS_URL="+env.NATS.ClientURL(),
		"GREENROOM_HTTP_ADDR=127.0.0.1:0",
		"GREENROOM_GATEWAY_ADDR=127.0.0.1:0",
		"GREENROOM_ADMIN_TOKEN=e2e-binaries",
		"GREENROOM_SHUTDOWN_TIMEOUT=20s",
		"GREENROOM_LOG_LEVEL=info",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var mu sync.Mutex
	var lines []logLine
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				t.Logf("%s: %s", name, sc.Text())
				continue
			}
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
			if l.Msg == "http server listening" {
				listening <- l.Addr
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	var addr string
	select {
	case addr = <-listening:
	case err := <-exited:
		t.Fatalf("%s exited before serving: %v", name, err)
	case <-time.After(90 * time.Second):
		t.Fatalf("%s did not start serving", name)
	}
	apptest.Eventually(t, 60*time.Second, name+" ready", func() bool {
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		_ = res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("%s exited with %v after SIGTERM, want 0", name, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s still running 60 s after SIGTERM (its shutdown timeout is 20 s)", name)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		if l.Msg == name+" stopped" && l.Graceful != nil && *l.Graceful {
			return
		}
	}
	t.Errorf("%s exited 0 without logging a graceful stop; its log: %+v", name, lines)
}
