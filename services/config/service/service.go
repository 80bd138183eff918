// Package service assembles the config service — use cases, HTTP handler,
// session-request client and outbox relay — from a service's connections.
// It is public so that end-to-end tests run the whole config service
// in-process:
//
//	svc, err := service.New(deps, service.Config{AdminToken: token})
//	svc.Start(ctx)
//	srv := httptest.NewServer(svc.Handler())
package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	libapp "github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/ports"
)

// Config configures the config service.
type Config struct {
	// AdminToken is the bearer token every /api/ call needs
	// (GREENROOM_ADMIN_TOKEN). It is required: the API changes what runs.
	AdminToken string
}

// Service is the config service.
type Service struct {
	deps    *libapp.Deps
	client  *client.Client
	handler http.Handler
	// stopWaits ends the session requests waiting for an outcome.
	stopWaits context.CancelFunc
	running   sync.WaitGroup
}

// New wires the config service on deps. Nothing runs until Start; the
// handler serves at once.
func New(deps *libapp.Deps, cfg Config) (*Service, error) {
	if cfg.AdminToken == "" {
		return nil, errors.New("an admin token is required (GREENROOM_ADMIN_TOKEN or --admin-token): the API must not be open")
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
		DB:       deps.DB,
		Source:   deps.Source(),
		Requests: c,
		Stopping: stopping,
		Waiting:  metrics.SessionWaits,
	})
	return &Service{
		deps:   deps,
		client: c,
		handler: ports.NewHandler(ports.Config{
			App:        uc,
			Ops:        deps.Ops.Mux,
			AdminToken: cfg.AdminToken,
			Metrics:    metrics,
			Log:        deps.Log,
		}),
		stopWaits: stopWaits,
	}, nil
}

// Handler serves the API under /api/v1, the admin UI at /, and /healthz,
// /readyz and /metrics.
func (s *Service) Handler() http.Handler { return s.handler }

// Start runs the outbox relay in the background until ctx is done. When ctx
// is done, session requests still waiting for their outcome are answered
// 202 at once, so that the HTTP server can drain quickly.
func (s *Service) Start(ctx context.Context) {
	relay := s.deps.NewRelay()
	s.running.Go(func() { relay.Start(ctx) })
	context.AfterFunc(ctx, s.stopWaits)
}

// Wait returns once what Start started has stopped.
func (s *Service) Wait() { s.running.Wait() }

// Run starts the service and blocks until ctx is done and it has stopped.
func (s *Service) Run(ctx context.Context) error {
	s.Start(ctx)
	<-ctx.Done()
	s.Wait()
	return nil
}

// Close ends any session wait and stops listening for session outcomes;
// call it after the HTTP server has stopped.
func (s *Service) Close() {
	s.stopWaits()
	s.client.Close()
}
