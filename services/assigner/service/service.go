// Package service assembles the assigner: the durable consumer of
// greenroom.session.requested, the use case, and the outbox relay. It is
// public so that end-to-end tests run the real service in-process.
package service

import (
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/startstop"
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
	// RequestMaxAge is the age past which a request is answered expired
	// instead of served (GREENROOM_REQUEST_MAX_AGE); zero is
	// app.MaxAgeDefault.
	RequestMaxAge time.Duration
	// Now is the clock requests are aged by; nil is time.Now. For tests.
	Now func() time.Time
}

// RequestMaxAgeDefault is GREENROOM_REQUEST_MAX_AGE's default.
const RequestMaxAgeDefault = appcmd.MaxAgeDefault

// Service is an assigner replica: a startstop.Group of the consumer of
// session requests and the outbox relay.
type Service struct {
	*startstop.Group
}

// New wires the use case and the consumer. Nothing runs until Start,
// which creates the durable consumer.
func New(deps *app.Deps, cfg Config) (*Service, error) {
	uc := appcmd.RequestSession{Store: adapters.NewStore(deps.DB, deps.Source(), deps.NewDirect()), Log: deps.Log,
		MaxAge: cfg.RequestMaxAge, Now: cfg.Now}
	metrics := ports.NewMetrics(deps.Ops.Registry)
	c, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{
		Name: ConsumerName,
		// The unqualified subject and every requesting service's own
		// (greenroom.session.requested.<requester>, events.SubjectFor).
		FilterSubjects: []string{events.TypeSessionRequested, events.TypeSessionRequested + ".*"},
		Concurrency:    cfg.Concurrency,
		MaxDeliver:     cfg.MaxDeliver,
		Source:         deps.Source(),
		// GREENROOM_SHUTDOWN_TIMEOUT: a stuck request never hangs shutdown.
		ShutdownTimeout: deps.Settings.ShutdownTimeout,
		Registerer:      deps.Ops.Registry,
		// A request that is invalid but names its request_id is answered
		// invalid_request; only an unreadable one is dead-lettered.
		Invalid: ports.InvalidRequests(uc, metrics, deps.Log),
	}, deps.Validator, deps.Log, ports.SessionRequests(uc, metrics, deps.Log))
	if err != nil {
		return nil, fmt.Errorf("creating assigner consumer: %w", err)
	}
	return &Service{startstop.NewGroup(deps.Settings.ShutdownTimeout).
		Add("session request consumer", c).
		Add("outbox relay", deps.NewRelay())}, nil
}
