package probe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

func target(t *testing.T, rawURL, path string) domain.ProbeTarget {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	return domain.ProbeTarget{Host: u.Hostname(), Port: port, Path: path}
}

func TestHTTPProbeAcceptsOnly2xxAnd3xx(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	p := New(Config{})
	for path, wantReady := range map[string]bool{"/ok": true, "/redirect": true, "/starting": false} {
		err := p.Once(context.Background(), target(t, srv.URL, path))
		if (err == nil) != wantReady {
			t.Errorf("probe %s: err = %v, want ready %v", path, err, wantReady)
		}
	}
}

// TestTCPProbeSeesThroughAProxyThatHangsUp stands in for docker-proxy: it
// accepts every connection on the published port and closes it at once
// while nothing listens in the container. A bare connect would call that
// ready; the probe must not.
func TestTCPProbeSeesThroughAProxyThatHangsUp(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var listening atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !listening.Load() {
				_ = c.Close()
				continue
			}
			go func() { // a server that waits for the client to speak
				time.Sleep(2 * time.Second)
				_ = c.Close()
			}()
		}
	}()
	tg := domain.ProbeTarget{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	p := New(Config{TCPSettle: 100 * time.Millisecond})
	if err := p.Once(context.Background(), tg); err == nil {
		t.Fatal("probe called a hang-up proxy ready")
	}
	listening.Store(true)
	if err := p.Once(context.Background(), tg); err != nil {
		t.Fatalf("probe of a listening server: %v", err)
	}
}

func TestWaitReadyStopsWhenTheContainerDies(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens: connection refused
	p := New(Config{Interval: 10 * time.Millisecond, AliveCheckEvery: 20 * time.Millisecond})
	dead := errors.New("container exited with code 1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err = p.WaitReady(ctx, domain.ProbeTarget{Host: "127.0.0.1", Port: port}, func(context.Context) error { return dead })
	if !errors.Is(err, dead) {
		t.Fatalf("WaitReady = %v, want the liveness error", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("WaitReady took %s to notice a dead container", time.Since(start))
	}
}

func TestWaitReadyTimesOut(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "never", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := New(Config{Interval: 10 * time.Millisecond}).WaitReady(ctx, target(t, srv.URL, "/healthz"), nil)
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("WaitReady = %v, want ErrNotReady", err)
	}
}
