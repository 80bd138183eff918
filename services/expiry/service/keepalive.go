package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
)

// ConsumerName is the durable consumer shared by every expiry replica.
const ConsumerName = "expiry"

// Outcomes of one keepalive, as the keepalive metric labels them.
const (
	keepaliveExtended = "extended"
	// keepaliveNotRunning: the session is not running (still starting, or
	// already ended): it has no deadline to move.
	keepaliveNotRunning = "not_running"
	// keepaliveUnknown: no such session.
	keepaliveUnknown = "unknown_session"
)

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
	// Now is the consumer's clock; nil means time.Now. A keepalive counts
	// from its event's time, but never from later than Now, so that a
	// sender whose clock runs ahead cannot keep a session alive for longer
	// than its keepalive_expiration after it was last used.
	Now func() time.Time
}

// KeepaliveConsumer extends running sessions on greenroom.session.keepalive
// (published by the config service's POST /api/v1/sessions/{id}/keepalive
// and by the gateway on a session's traffic): the session's keepalive
// deadline moves to the event's time plus its keepalive_expiration, and its
// expires_at with it (libs/sessions.Keepalive, which never shortens a
// deadline, so a redelivered or replayed keepalive is harmless). The
// sweeper then ends the session at the new deadline, not the old one.
type KeepaliveConsumer struct {
	consumer *bus.Consumer
	db       *sqlx.DB
	log      *zap.Logger
	now      func() time.Time
	handled  *prometheus.CounterVec
}

// NewKeepaliveConsumer creates (or updates) the expiry service's durable
// consumer of greenroom.session.keepalive. An event that does not match its
// schema is dead-lettered by libs/bus.
func NewKeepaliveConsumer(ctx context.Context, js jetstream.JetStream, validator bus.Validator, conn *sqlx.DB,
	cfg KeepaliveConfig, log *zap.Logger,
) (*KeepaliveConsumer, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := &KeepaliveConsumer{
		db:  conn,
		log: log.Named("keepalive"),
		now: cfg.Now,
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "greenroom_expiry_keepalives_total",
			Help: "Keepalives handled, by outcome (extended, not_running, unknown_session).",
		}, []string{"outcome"}),
	}
	c, err := bus.NewConsumer(ctx, js, bus.ConsumerConfig{
		Name:            ConsumerName,
		FilterSubjects:  []string{events.TypeSessionKeepalive},
		Concurrency:     cfg.Concurrency,
		MaxDeliver:      cfg.MaxDeliver,
		Source:          cfg.Source,
		ShutdownTimeout: cfg.ShutdownTimeout,
	}, validator, log, k.Handle)
	if err != nil {
		return nil, fmt.Errorf("creating the keepalive consumer: %w", err)
	}
	k.consumer = c
	return k, nil
}

// Collectors are the consumer's Prometheus metrics, for the service's
// registry.
func (k *KeepaliveConsumer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{k.handled}
}

// Run consumes keepalives until ctx is done, then waits for those in
// flight.
func (k *KeepaliveConsumer) Run(ctx context.Context) error { return k.consumer.Run(ctx) }

// Handle extends the session one keepalive names. A session that is not
// running, or not there at all, has nothing to extend: the keepalive is
// logged and acknowledged, never retried.
func (k *KeepaliveConsumer) Handle(ctx context.Context, msg bus.Message) error {
	var d events.SessionKeepalive
	if err := msg.Event.DecodeData(&d); err != nil {
		return bus.Permanent(err)
	}
	if _, err := uuid.Parse(d.SessionID); err != nil {
		return bus.Permanent(fmt.Errorf("session_id %q: %w", d.SessionID, err))
	}
	at := msg.Event.Time
	if now := k.now(); at.IsZero() || at.After(now) {
		at = now
	}
	log := k.log.With(zap.String("session_id", d.SessionID), zap.String("request_id", d.RequestID),
		zap.Uint64("stream_seq", msg.StreamSequence))
	s, err := sessions.Keepalive(ctx, k.db, d.SessionID, at)
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		k.handled.WithLabelValues(keepaliveUnknown).Inc()
		log.Info("keepalive for an unknown session ignored")
		return nil
	case errors.Is(err, sessions.ErrStale):
		k.handled.WithLabelValues(keepaliveNotRunning).Inc()
		log.Info("keepalive for a session that is not running ignored", zap.String("status", string(s.Status)))
		return nil
	case err != nil:
		return fmt.Errorf("error extending session %s: %w", d.SessionID, err) // retried
	}
	k.handled.WithLabelValues(keepaliveExtended).Inc()
	log.Debug("session kept alive", zap.Time("at", at), zap.Time("expires_at", s.ExpiresAt.Time),
		zap.Bool("expires", s.ExpiresAt.Valid))
	return nil
}
