// Package app wires what every Greenroom service needs at start: logger,
// PostgreSQL, NATS JetStream and the GREENROOM stream (used as it is;
// its limits are greenroom migrate's, see libs/stream), an event publisher
// and validator, the outbox relay, and the operator HTTP endpoints. Each
// service's main.go reads its settings (libs/settings) and calls Run,
// which goes on in the same order for every service: logger,
// dependencies, service, serve, wait. See docs/architecture.md.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natsauth"
	"github.com/greenroom-dev/greenroom/libs/obs"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/libs/stream"
)

// Deps are a service's connections. Close releases them.
type Deps struct {
	Name      string
	Settings  settings.Common
	Log       *zap.Logger
	DB        *sqlx.DB
	NC        *nats.Conn
	JS        jetstream.JetStream
	Stream    jetstream.Stream
	Validator *events.Validator
	Publisher *bus.Publisher
	Ops       *obs.Ops
}

// Connect opens every dependency of service name. It waits up to
// connectTimeout for PostgreSQL and NATS so services may start in any order.
func Connect(ctx context.Context, name string, s settings.Common, log *zap.Logger, connectTimeout time.Duration) (*Deps, error) {
	d := &Deps{Name: name, Settings: s, Log: log, Ops: obs.NewOps()}
	// Before waiting for anything: a TLS file that cannot be read is a
	// start-up error, not a minute of retries.
	natsTLS, err := s.NatsTLS.ConnectOptions()
	if err != nil {
		return nil, fmt.Errorf("nats TLS: %w", err)
	}
	d.Validator, err = events.NewValidator()
	if err != nil {
		return nil, fmt.Errorf("loading event schemas: %w", err)
	}
	d.DB, err = db.Open(ctx, s.DatabaseURL, connectTimeout)
	if err != nil {
		return nil, err
	}
	// A connection that keeps failing (a certificate refused, say) is
	// retried until connectTimeout; its reasons are logged, and end the
	// error if it never connects.
	var failures connFailures
	failed := func(err error) {
		if failures.add(err) {
			log.Warn("nats connection failed; retrying", zap.Error(err))
		}
	}
	opts := append(natsauth.ConnectOptions(s.NatsURL), natsTLS...)
	d.NC, err = nats.Connect(s.NatsURL, append(opts,
		nats.Name("greenroom-"+name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", zap.String("url", nc.ConnectedUrlRedacted())) }),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { failed(err) }),
	)...)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("connecting to nats %s: %w", settings.Redact(s.NatsURL), err)
	}
	d.JS, err = jetstream.New(d.NC)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for {
		// The stream's limits are greenroom migrate's (libs/stream): a
		// service uses the stream as it is, and creates it with the
		// defaults only when it is absent; it never changes it.
		var created bool
		d.Stream, created, err = stream.Ensure(sctx, d.JS, s.StreamReplicas)
		if err == nil {
			if created {
				log.Warn("created the stream with the default limits; greenroom migrate sets the configured ones",
					zap.String("stream", bus.StreamName))
			}
			break
		}
		select {
		case <-sctx.Done():
			if !d.NC.IsConnected() {
				// The handler hears of the first attempt's failure
				// only; the last attempt's is the connection's error.
				failures.add(d.NC.LastError())
				if reasons := failures.String(); reasons != "" {
					err = fmt.Errorf("%w; not connected to nats %s: %s", err, settings.Redact(s.NatsURL), reasons)
				}
			}
			d.Close()
			return nil, fmt.Errorf("waiting for jetstream: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	d.Publisher = bus.NewPublisher(d.JS, d.Validator)
	d.Ops.AddCheck("postgres", func(ctx context.Context) error { return d.DB.PingContext(ctx) })
	d.Ops.AddCheck("nats", func(ctx context.Context) error {
		if !d.NC.IsConnected() {
			return errors.New("not connected")
		}
		_, err := d.JS.AccountInfo(ctx)
		return err
	})
	return d, nil
}

// connFailures are the reasons a connection failed, each once, for the
// log and for the error of a connection that never succeeds. One cause
// shows as several reasons (a server refusing a client certificate under
// TLS 1.3 is "certificate required" or a closed connection, by timing),
// so all are kept.
type connFailures struct {
	mu      sync.Mutex
	reasons []string
}

// maxConnFailures bounds the reasons kept.
const maxConnFailures = 4

// add records err and reports whether it is a new reason.
func (f *connFailures) add(err error) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil || slices.Contains(f.reasons, err.Error()) || len(f.reasons) == maxConnFailures {
		return false
	}
	f.reasons = append(f.reasons, err.Error())
	return true
}

func (f *connFailures) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.reasons, "; ")
}

// Source is the CloudEvents source of this service's events.
func (d *Deps) Source() string { return "greenroom/" + d.Name }

// NewRelay returns an outbox relay publishing this service's events (the
// outbox rows of its source) through this service.
func (d *Deps) NewRelay() *outbox.Relay {
	return outbox.NewRelay(outbox.RelayConfig{DatabaseURL: d.Settings.DatabaseURL, Source: d.Source()}, d.DB, d.Publisher, d.Log)
}

// NewDirect returns what runs the transactions of a hand-off's hot path
// whose events this service publishes itself after the commit
// (outbox.Direct), the relays being the safety net.
func (d *Deps) NewDirect() *outbox.Direct {
	return outbox.NewDirect(d.DB, d.Publisher, d.Log, 0)
}

// Close releases the connections.
func (d *Deps) Close() {
	if d.NC != nil {
		_ = d.NC.Drain()
	}
	if d.DB != nil {
		_ = d.DB.Close()
	}
}

// ConnectTimeout is how long a service waits at start for PostgreSQL and
// NATS, so that services may start in any order.
const ConnectTimeout = time.Minute

// Run is every service's main after its settings: logger, dependencies,
// service (newService, then Start), serve (on common.HTTPAddr, the
// service's Handler() when it has one, else Deps.Ops: /healthz, /readyz
// and /metrics; HTTPS when it has TLSFiles()), wait (until SIGINT
// or SIGTERM, or a part failing; then everything stops within
// common.ShutdownTimeout). Any failure is printed and exits non-zero.
func Run(name string, common settings.Common, newService func(*Deps) (startstop.Service, error)) {
	// Logger.
	log, err := obs.NewLogger(name, common.LogLevel)
	if err != nil {
		Fatal(name, err)
	}
	defer func() { _ = log.Sync() }()

	// Dependencies.
	ctx, stop := SignalContext()
	defer stop()
	deps, err := Connect(ctx, name, common, log, ConnectTimeout)
	if err != nil {
		Fatal(name, err)
	}
	defer deps.Close()

	// Service.
	svc, err := newService(deps)
	if err != nil {
		Fatal(name, err)
	}
	if err := svc.Start(ctx); err != nil {
		Fatal(name, err)
	}

	// Serve.
	var handler http.Handler = deps.Ops.Mux
	if h, ok := svc.(interface{ Handler() http.Handler }); ok {
		handler = h.Handler()
	}
	srv := obs.NewServer(common.HTTPAddr, handler, log)
	scheme := "http"
	if t, ok := svc.(interface{ TLSFiles() (cert, key string) }); ok {
		if cert, key := t.TLSFiles(); cert != "" {
			srv.WithTLS(cert, key)
			scheme = "https"
		}
	}
	if err := srv.Start(ctx); err != nil {
		// The service runs already: stop it (its work in flight finishes
		// or is redelivered) before exiting.
		err = errors.Join(err, startstop.StopWithin(common.ShutdownTimeout, startstop.Part{Name: "service", Service: svc}))
		Fatal(name, err)
	}
	log.Info(name+" running", zap.String("url", scheme+"://"+srv.Addr().String()+"/"))

	// Wait.
	if err := Wait(ctx, common.ShutdownTimeout, svc, srv); err != nil {
		log.Error(name+" stopped", zap.Error(err))
		_ = log.Sync()
		Fatal(name, err)
	}
	log.Info(name+" stopped", zap.Bool("graceful", true))
}

// Wait is the last step of Run: it returns once ctx is done (SIGINT,
// SIGTERM) or the service or its HTTP server stopped on its own, having
// stopped both. Its error says which part failed, or which did not stop in
// time (startstop.ErrShutdownTimeout). The service bounds its own stop by
// the shutdown timeout and names its parts still running then; Wait gives
// it stopReportGrace more to say so before giving up on it.
func Wait(ctx context.Context, shutdownTimeout time.Duration, svc, srv startstop.Service) error {
	parts := []startstop.Part{{Name: "http server", Service: srv}, {Name: "service", Service: svc}}
	var cause error
	select {
	case <-ctx.Done():
	case <-svc.Stopped():
		cause = stoppedOnItsOwn("the service", svc)
	case <-srv.Stopped():
		cause = stoppedOnItsOwn("the http server", srv)
	}
	if ctx.Err() != nil {
		// Both were started on ctx: at a signal they stop by themselves,
		// and may be seen stopped before the signal is.
		cause = nil
	}
	bound := shutdownTimeout
	if bound > 0 {
		bound += stopReportGrace
	}
	return errors.Join(cause, startstop.StopWithin(bound, parts...))
}

// stopReportGrace is how long Wait waits past the shutdown timeout for
// the service's own report of what did not stop.
const stopReportGrace = time.Second

func stoppedOnItsOwn(what string, s startstop.Service) error {
	if err := s.Err(); err != nil {
		return fmt.Errorf("%s stopped on its own: %w", what, err)
	}
	return fmt.Errorf("%s stopped on its own", what)
}

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Fatal prints err and exits non-zero; for main functions.
func Fatal(service string, err error) {
	fmt.Fprintf(os.Stderr, "greenroom-%s: %s\n", service, strings.TrimSpace(err.Error()))
	os.Exit(1)
}
