// Package obs is what every service exposes to operators: structured JSON
// logs (zap), GET /healthz (the process is alive), GET /readyz (its
// dependencies answer) and GET /metrics (Prometheus).
package obs

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/greenroom-dev/greenroom/libs/startstop"
)

// NewLogger returns a JSON logger at level (debug, info, warn, error) with
// the service name on every line.
func NewLogger(service, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.EncoderConfig.TimeKey = "time"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil
	log, err := cfg.Build()
	if err != nil {
		return nil, err
	}
	return log.With(zap.String("service", service)), nil
}

// Check reports whether one dependency is usable.
type Check func(ctx context.Context) error

// Ops serves /healthz, /readyz and /metrics, and anything mounted on Mux.
type Ops struct {
	Mux      *http.ServeMux
	Registry *prometheus.Registry

	mu     sync.Mutex
	checks map[string]Check
}

// NewOps returns an Ops with a fresh registry holding the Go and process
// collectors.
func NewOps() *Ops {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o := &Ops{Mux: http.NewServeMux(), Registry: reg, checks: map[string]Check{}}
	o.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	o.Mux.HandleFunc("GET /readyz", o.ready)
	o.Mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return o
}

// AddCheck registers a readiness check.
func (o *Ops) AddCheck(name string, c Check) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks[name] = c
}

func (o *Ops) ready(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	names := make([]string, 0, len(o.checks))
	for n := range o.checks {
		names = append(names, n)
	}
	o.mu.Unlock()
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	results := map[string]string{}
	ok := true
	for _, n := range names {
		o.mu.Lock()
		c := o.checks[n]
		o.mu.Unlock()
		if err := c(ctx); err != nil {
			results[n] = err.Error()
			ok = false
		} else {
			results[n] = "ok"
		}
	}
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": results})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "checks": results})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Server serves a service's HTTP handler (its API, or only /healthz,
// /readyz and /metrics) as a startstop.Service: Start binds the address
// (an address in use is a start-up error) and serves in the background;
// the end of Start's context or Stop stops accepting connections and waits
// for the requests in flight.
type Server struct {
	startstop.BaseStartStop
	addr    string
	handler http.Handler
	log     *zap.Logger
	bound   net.Addr
	// certFile and keyFile, when set, make it serve HTTPS.
	certFile, keyFile string
}

// NewServer returns a server of h on addr; Start serves it.
func NewServer(addr string, h http.Handler, log *zap.Logger) *Server {
	return &Server{addr: addr, handler: h, log: log}
}

// WithTLS makes the server serve HTTPS with the PEM certificate (chain)
// and key in these files; call it before Start.
func (s *Server) WithTLS(certFile, keyFile string) *Server {
	s.certFile, s.keyFile = certFile, keyFile
	return s
}

// Start listens and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	ctx, shouldStart, stopped := s.StartInit(ctx)
	if !shouldStart {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		err = fmt.Errorf("listening on %s: %w", s.addr, err)
		stopped(err)
		return err
	}
	s.bound = ln.Addr()
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	if s.certFile != "" {
		cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			_ = ln.Close()
			err = fmt.Errorf("loading the TLS certificate %s and key %s: %w", s.certFile, s.keyFile, err)
			stopped(err)
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go func() {
		select {
		case <-ctx.Done():
			// Bounded by whoever waits for the stop (the shutdown timeout).
			stopped(srv.Shutdown(context.Background()))
		case err := <-served:
			s.log.Error("http server stopped", zap.Error(err))
			stopped(fmt.Errorf("serving %s: %w", s.bound, err))
		}
	}()
	s.log.Info("http server listening", zap.String("addr", s.bound.String()), zap.Bool("tls", s.certFile != ""))
	return nil
}

// Addr is the address the server listens on, once started.
func (s *Server) Addr() net.Addr { return s.bound }
