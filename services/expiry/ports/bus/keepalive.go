// Package bus is how the bus talks to the expiry service: the durable
// JetStream consumer "expiry", shared by every replica, of
// greenroom.session.keepalive. It decodes each keepalive, checks the
// session id, hands it to app.ExtendSession and turns the outcome into an
// ack, a retry or a dead letter.
package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	libbus "github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
)

// ConsumerName is the durable consumer shared by every expiry replica.
const ConsumerName = "expiry"

// KeepaliveConfig configures a KeepaliveConsumer. Zero values take the
// defaults of libs/bus.
type KeepaliveConfig struct {
	// Concurrency is how many keepalives one replica handles at once.
	Concurrency int
	// MaxDeliver bounds redeliveries of a keepalive that keeps failing
	// (the database is down, say) before it is dead-lettered.
	MaxDeliver int
	// Source names the service in dead-letter events.
	Source string
	// ShutdownTimeout bounds the wait for keepalives in flight at
	// shutdown (GREENROOM_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// Registerer, when set, gets the consumer's bus metrics: deliveries
	// by outcome, redeliveries, dead letters and lag (libs/bus).
	Registerer prometheus.Registerer
}

// KeepaliveConsumer consumes greenroom.session.keepalive and extends the
// session each names (app.ExtendSession).
type KeepaliveConsumer struct {
	// Consumer consumes the keepalives (startstop: Start, Stop).
	*libbus.Consumer
	extend  app.ExtendSession
	log     *zap.Logger
	handled *prometheus.CounterVec
}

// NewKeepaliveConsumer returns the expiry service's durable consumer of
// greenroom.session.keepalive; Start creates (or updates) it. An event
// that does not match its schema is dead-lettered by libs/bus.
func NewKeepaliveConsumer(js jetstream.JetStream, validator libbus.Validator, extend app.ExtendSession,
	cfg KeepaliveConfig, log *zap.Logger,
) (*KeepaliveConsumer, error) {
	k := &KeepaliveConsumer{
		extend: extend,
		log:    log.Named("keepalive"),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_expiry_keepalives_total",
			Help: "Keepalives handled, by outcome (extended, not_running, unknown_session).",
		}, []string{"outcome"}),
	}
	c, err := libbus.NewConsumer(js, libbus.ConsumerConfig{
		Name:            ConsumerName,
		FilterSubjects:  []string{events.TypeSessionKeepalive},
		Concurrency:     cfg.Concurrency,
		MaxDeliver:      cfg.MaxDeliver,
		Source:          cfg.Source,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Registerer:      cfg.Registerer,
	}, validator, log, k.Handle)
	if err != nil {
		return nil, fmt.Errorf("creating the keepalive consumer: %w", err)
	}
	k.Consumer = c
	return k, nil
}

// Collectors are the consumer's Prometheus metrics, for the service's
// registry.
func (k *KeepaliveConsumer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{k.handled}
}

// Handle extends the session one keepalive names. A keepalive that cannot
// be decoded or names no valid session id is dead-lettered at once; one
// for a session that is not running, or not there at all, is logged and
// acknowledged, never retried; a failure to write it is retried.
func (k *KeepaliveConsumer) Handle(ctx context.Context, msg libbus.Message) error {
	var d events.SessionKeepalive
	if err := msg.Event.DecodeData(&d); err != nil {
		return libbus.Permanent(err)
	}
	if _, err := uuid.Parse(d.SessionID); err != nil {
		return libbus.Permanent(fmt.Errorf("session_id %q: %w", d.SessionID, err))
	}
	res, err := k.extend.Handle(ctx, d.SessionID, msg.Event.Time)
	if err != nil {
		return err // retried
	}
	k.handled.WithLabelValues(string(res.Outcome)).Inc()
	log := k.log.With(zap.String("session_id", d.SessionID), zap.String("request_id", d.RequestID),
		zap.Uint64("stream_seq", msg.StreamSequence))
	switch res.Outcome {
	case app.KeepaliveUnknownSession:
		log.Info("keepalive for an unknown session ignored")
	case app.KeepaliveNotRunning:
		log.Info("keepalive for a session that is not running ignored", zap.String("status", string(res.Session.Status)))
	default:
		log.Debug("session kept alive", zap.Time("at", res.At), zap.Time("expires_at", res.Session.ExpiresAt.Time),
			zap.Bool("expires", res.Session.ExpiresAt.Valid))
	}
	return nil
}
