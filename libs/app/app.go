// Package app wires what every Greenroom service needs at start: logger,
// PostgreSQL, NATS JetStream and the GREENROOM stream, an event publisher
// and validator, the outbox relay, and the operator HTTP endpoints. Each
// service's main.go reads: settings → app.Connect → service → run until a signal.
package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/obs"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/settings"
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
	var err error
	d.Validator, err = events.NewValidator()
	if err != nil {
		return nil, fmt.Errorf("loading event schemas: %w", err)
	}
	d.DB, err = db.Open(ctx, s.DatabaseURL, connectTimeout)
	if err != nil {
		return nil, err
	}
	d.NC, err = nats.Connect(s.NatsURL,
		nats.Name("greenroom-"+name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", zap.String("url", nc.ConnectedUrl())) }),
	)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("connecting to nats %s: %w", s.NatsURL, err)
	}
	d.JS, err = jetstream.New(d.NC)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for {
		d.Stream, err = bus.EnsureStream(sctx, d.JS, bus.StreamConfig{Replicas: s.StreamReplicas})
		if err == nil {
			break
		}
		select {
		case <-sctx.Done():
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

// Source is the CloudEvents source of this service's events.
func (d *Deps) Source() string { return "greenroom/" + d.Name }

// NewRelay returns an outbox relay publishing through this service.
func (d *Deps) NewRelay() *outbox.Relay {
	return outbox.NewRelay(outbox.RelayConfig{DatabaseURL: d.Settings.DatabaseURL}, d.DB, d.Publisher, d.Log)
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

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Fatal prints err and exits non-zero; for main functions.
func Fatal(service string, err error) {
	fmt.Fprintf(os.Stderr, "greenroom-%s: %s\n", service, strings.TrimSpace(err.Error()))
	os.Exit(1)
}
