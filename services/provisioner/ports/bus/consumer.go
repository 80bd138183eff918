// Package bus is how the world talks to the provisioner: one durable
// JetStream consumer, "provisioner", shared by every replica, that decodes
// each event and hands it to its use case.
package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	libbus "github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// ConsumerName is the durable consumer of every provisioner replica.
const ConsumerName = "provisioner"

// ConcurrencyDefault is how many assignments, destroys and config changes
// one replica handles at once.
const ConcurrencyDefault = 16

// ProvisionConcurrencyDefault is how many containers one replica creates
// at once. Creations (seconds each) have a lane of their own, so that a
// burst of them never holds up a staged assignment, which takes
// milliseconds.
const ProvisionConcurrencyDefault = 8

// Subjects are what the provisioner consumes.
var Subjects = []string{
	events.TypeProvisionRequested,
	events.TypeSessionAssigned,
	events.TypeSessionExpired,
	events.TypeSessionDestroy,
	events.TypeConfigChanged + ".>",
}

// UseCases are what the consumer calls.
type UseCases interface {
	ProvisionSession(ctx context.Context, req events.ProvisionRequested) error
	AssignSession(ctx context.Context, ev events.SessionAssigned) error
	DestroySession(ctx context.Context, sessionID, reason string) error
}

// ConfigChanged is told of configuration changes (to reconcile pools):
// the id of a changed staging config, or "" for anything else.
type ConfigChanged func(stagingConfigID string)

// Config configures the consumer.
type Config struct {
	Name string
	// Concurrency bounds everything but container creation.
	Concurrency int
	// ProvisionConcurrency bounds container creations
	// (greenroom.provision.requested).
	ProvisionConcurrency int
	Source               string
	// ShutdownTimeout bounds the wait for handlers in flight at shutdown
	// (GREENROOM_SHUTDOWN_TIMEOUT; libbus.ConsumerConfig).
	ShutdownTimeout time.Duration
	// Registerer gets the consumer's metrics (libbus.ConsumerConfig).
	Registerer prometheus.Registerer
}

// NewConsumer returns the provisioner's consumer; its Start creates (or
// updates) the durable consumer.
func NewConsumer(js jetstream.JetStream, validator libbus.Validator, log *zap.Logger, cfg Config, uc UseCases, changed ConfigChanged) (*libbus.Consumer, error) {
	if cfg.Name == "" {
		cfg.Name = ConsumerName
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = ConcurrencyDefault
	}
	if cfg.ProvisionConcurrency == 0 {
		cfg.ProvisionConcurrency = ProvisionConcurrencyDefault
	}
	h := handler{uc: uc, changed: changed}
	return libbus.NewConsumer(js, libbus.ConsumerConfig{
		Name: cfg.Name, FilterSubjects: Subjects, Concurrency: cfg.Concurrency, Source: cfg.Source, ShutdownTimeout: cfg.ShutdownTimeout,
		Registerer: cfg.Registerer,
		Lanes:      []libbus.Lane{{Subjects: []string{events.TypeProvisionRequested}, Concurrency: cfg.ProvisionConcurrency}},
	}, validator, log, h.handle)
}

type handler struct {
	uc      UseCases
	changed ConfigChanged
}

func (h handler) handle(ctx context.Context, m libbus.Message) error {
	err := h.dispatch(ctx, m.Event)
	if errors.Is(err, sessions.ErrNotFound) {
		// The event names a session that does not exist: no retry makes it.
		return libbus.Permanent(err)
	}
	return err
}

func (h handler) dispatch(ctx context.Context, ev events.Event) error {
	switch ev.Type {
	case events.TypeProvisionRequested:
		var d events.ProvisionRequested
		if err := ev.DecodeData(&d); err != nil {
			return err
		}
		return h.uc.ProvisionSession(ctx, d)
	case events.TypeSessionAssigned:
		var d events.SessionAssigned
		if err := ev.DecodeData(&d); err != nil {
			return err
		}
		return h.uc.AssignSession(ctx, d)
	case events.TypeSessionExpired:
		var d events.SessionExpired
		if err := ev.DecodeData(&d); err != nil {
			return err
		}
		return h.uc.DestroySession(ctx, d.SessionID, d.Reason)
	case events.TypeSessionDestroy:
		var d events.SessionDestroy
		if err := ev.DecodeData(&d); err != nil {
			return err
		}
		return h.uc.DestroySession(ctx, d.SessionID, d.Reason)
	case events.TypeConfigChanged:
		var d events.ConfigChanged
		if err := ev.DecodeData(&d); err != nil {
			return err
		}
		switch d.Kind {
		case "staging_config":
			h.changed(d.ID)
		case "zone", "agent", "pool", "workspace":
			// May unblock (capacity, a re-enabled workspace) any pool.
			h.changed("")
		}
		return nil
	default:
		return libbus.Permanent(fmt.Errorf("provisioner does not handle %s", ev.Type))
	}
}
