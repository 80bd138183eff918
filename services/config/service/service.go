// Package service assembles the config service — use cases, HTTP handler,
// session-request client and outbox relay — from a service's connections.
// It is public so that end-to-end tests run the whole config service
// in-process:
//
//	svc, err := service.New(deps, service.Config{AdminToken: token})
//	err = svc.Start(ctx)
//	srv := httptest.NewServer(svc.Handler())
package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	libapp "github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/signin"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/config/adapters"
	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/ports"
)

// Config configures the config service.
type Config struct {
	// AdminToken is the bearer token that may make every /api/ call but
	// session-auth (GREENROOM_ADMIN_TOKEN); API keys, which it issues, may
	// make those their scopes grant. It is required: the API changes what
	// runs.
	AdminToken string
	// AuditCheckpointEvery is how often the notary checkpoints the audit
	// log (GREENROOM_AUDIT_CHECKPOINT_EVERY; libs/audit).
	AuditCheckpointEvery time.Duration
}

// Service is the config service: its HTTP handler, and a
// startstop.Group of the outbox relay and the end of the session waits.
type Service struct {
	*startstop.Group
	handler http.Handler
}

// New wires the config service on deps: the handler serves at once (its
// session-request client listens for outcomes from now on); the relay runs
// from Start. When the service stops, session requests still
// waiting for their outcome are answered 202 at once, so that the HTTP
// server can drain quickly.
func New(deps *libapp.Deps, cfg Config) (*Service, error) {
	if cfg.AdminToken == "" {
		return nil, errors.New("an admin token is required (GREENROOM_ADMIN_TOKEN or --admin-token): the API must not be open")
	}
	if cfg.AuditCheckpointEvery < 0 {
		return nil, fmt.Errorf("GREENROOM_AUDIT_CHECKPOINT_EVERY %s is negative", cfg.AuditCheckpointEvery)
	}
	c, err := client.New(deps.NC, client.WithSource(deps.Source()))
	if err != nil {
		return nil, fmt.Errorf("creating the session request client: %w", err)
	}
	metrics, err := ports.NewMetrics(deps.Ops.Registry)
	if err != nil {
		c.Close()
		return nil, err
	}
	stopping, stopWaits := context.WithCancel(context.Background())
	uc := app.New(app.Config{
		Store:        adapters.NewStore(deps.DB),
		Source:       deps.Source(),
		Requests:     adapters.NewRequests(deps.DB, deps.NewDirect(), c, deps.Source()),
		Stopping:     stopping,
		Waiting:      metrics.SessionWaits,
		HashPassword: signin.HashPassword,
	})
	feed := adapters.NewFeed(deps.NC)
	g := startstop.NewGroup(deps.Settings.ShutdownTimeout).
		Add("outbox relay", deps.NewRelay()).
		Add("event feed", feed).
		Add("audit notary", audit.NewNotary(audit.NotaryConfig{Every: cfg.AuditCheckpointEvery, Source: deps.Source()},
			deps.DB, deps.JS, deps.Log)).
		Add("session waits", startstop.Func(func(ctx context.Context) error {
			<-ctx.Done()
			stopWaits()
			return nil
		})).
		AfterStop(c.Close)
	handler, err := ports.NewHandler(ports.Config{
		App:        uc,
		Ops:        deps.Ops.Mux,
		AdminToken: cfg.AdminToken,
		Metrics:    metrics,
		Log:        deps.Log,
		Events:     feed,
	})
	if err != nil {
		c.Close()
		stopWaits()
		return nil, err
	}
	return &Service{Group: g, handler: handler}, nil
}

// Handler serves the API under /api/v1, the admin UI at /, and /healthz,
// /readyz and /metrics.
func (s *Service) Handler() http.Handler { return s.handler }
