// Package service assembles the assigner: the durable consumer of
// greenroom.session.requested, the use case, and the outbox relay. It is
// public so that end-to-end tests run the real service in-process.
package service

import (
	"context"
	"fmt"
	"sync"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/assigner/adapters"
	appcmd "github.com/greenroom-dev/greenroom/services/assigner/app"
	"github.com/greenroom-dev/greenroom/services/assigner/ports"
)

// ConsumerName is the durable consumer shared by every assigner replica.
const ConsumerName = "assigner"

// Config tunes the assigner.
type Config struct {
	// Concurrency is how many requests one replica serves at once.
	Concurrency int
	// MaxDeliver bounds redeliveries of a failing request before it is
	// dead-lettered.
	MaxDeliver int
}

// Service is a running assigner.
type Service struct {
	deps     *app.Deps
	consumer *bus.Consumer
}

// New creates the consumer and wires the use case.
func New(ctx context.Context, deps *app.Deps, cfg Config) (*Service, error) {
	uc := appcmd.RequestSession{Store: adapters.NewStore(deps.DB, deps.Source(), deps.NewDirect()), Log: deps.Log}
	metrics := ports.NewMetrics(deps.Ops.Registry)
	c, err := bus.NewConsumer(ctx, deps.JS, bus.ConsumerConfig{
		Name:           ConsumerName,
		FilterSubjects: []string{events.TypeSessionRequested},
		Concurrency:    cfg.Concurrency,
		MaxDeliver:     cfg.MaxDeliver,
		Source:         deps.Source(),
		// GREENROOM_SHUTDOWN_TIMEOUT: a stuck request never hangs shutdown.
		ShutdownTimeout: deps.Settings.ShutdownTimeout,
	}, deps.Validator, deps.Log, ports.SessionRequests(uc, metrics, deps.Log))
	if err != nil {
		return nil, fmt.Errorf("creating assigner consumer: %w", err)
	}
	return &Service{deps: deps, consumer: c}, nil
}

// Run serves requests and relays the outbox until ctx is done, then waits
// for requests in flight.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	relay := s.deps.NewRelay()
	wg.Go(func() { relay.Start(ctx) })
	err := s.consumer.Run(ctx)
	wg.Wait()
	return err
}
