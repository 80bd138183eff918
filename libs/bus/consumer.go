package bus

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/startstop"
)

// Consumer defaults. With them a failing message is retried for about two
// minutes (0.2 s doubling to 30 s between tries) before it is
// dead-lettered, which rides out a restart of PostgreSQL or a Docker engine.
const (
	MaxDeliverDefault  = 10
	AckWaitDefault     = 30 * time.Second
	ConcurrencyDefault = 8
	RetryDelayMin      = 200 * time.Millisecond
	RetryDelayMax      = 30 * time.Second
)

// Lane gives some subjects their own concurrency, so that slow work (a
// container being created) never occupies the slots of fast work (an assign
// exec) on the same consumer.
type Lane struct {
	// Subjects are exact subjects or prefixes ending in ".>".
	Subjects []string
	// Concurrency is how many messages of the lane one replica handles at
	// once.
	Concurrency int
}

func (l Lane) matches(subject string) bool {
	for _, s := range l.Subjects {
		if s == subject || (strings.HasSuffix(s, ".>") && strings.HasPrefix(subject, s[:len(s)-1])) {
			return true
		}
	}
	return false
}

// ConsumerConfig describes one service's durable pull consumer.
type ConsumerConfig struct {
	// Name is the durable name, shared by every replica of the service.
	Name string
	// FilterSubjects are the subjects the service consumes.
	FilterSubjects []string
	// MaxDeliver bounds redeliveries; the last failed delivery is
	// dead-lettered.
	MaxDeliver int
	// AckWait is how long the server waits for an ack before redelivering;
	// handlers that run longer send in-progress acks every AckWait/3.
	AckWait time.Duration
	// Concurrency is how many messages one replica handles at once, on
	// subjects outside every lane.
	Concurrency int
	// Lanes give subjects their own concurrency besides Concurrency.
	Lanes []Lane
	// Source names the service in dead-letter events.
	Source string
	// ShutdownTimeout bounds how long the consumer, once stopping, waits
	// for the handlers in flight (GREENROOM_SHUTDOWN_TIMEOUT). Past it,
	// their context is cancelled and the consumer stops with ErrShutdownTimeout
	// without their acks: their messages are redelivered, to this replica
	// or another, and handlers are idempotent.
	ShutdownTimeout time.Duration
	// Invalid, when set, is given each message that cannot be handed to
	// the handler because it does not decode or does not match its schema
	// (m.Invalid says why and wraps events.ErrMalformed; m.Event is set
	// when at least the envelope decodes; m.Data holds the raw bytes), so
	// that the service may answer it
	// (the assigner fails a request whose request_id it can read). Its
	// result counts as a handler's: nil acks the message; an error marked
	// Permanent (or wrapping events.ErrMalformed) dead-letters it with that
	// error as the reason; any other error is retried. Unset, such messages
	// are dead-lettered.
	Invalid Handler
	// Registerer, when set, gets the consumer's metrics (metrics.go):
	// deliveries by outcome, redeliveries and dead letters counted by
	// this replica, and the durable consumer's lag read from the server
	// at each scrape. Usually the service's deps.Ops.Registry.
	Registerer prometheus.Registerer
}

// ShutdownTimeoutDefault is ConsumerConfig.ShutdownTimeout's default, as
// GREENROOM_SHUTDOWN_TIMEOUT's.
const ShutdownTimeoutDefault = 20 * time.Second

// ErrShutdownTimeout is the consumer's Err when handlers were still
// running at the end of the shutdown timeout; their messages will be
// redelivered.
var ErrShutdownTimeout = fmt.Errorf("handlers %w; their messages will be redelivered", startstop.ErrShutdownTimeout)

func (c *ConsumerConfig) totalConcurrency() int {
	n := c.Concurrency
	for _, l := range c.Lanes {
		n += l.Concurrency
	}
	return n
}

func (c *ConsumerConfig) withDefaults() {
	c.MaxDeliver = cmp.Or(c.MaxDeliver, MaxDeliverDefault)
	c.AckWait = cmp.Or(c.AckWait, AckWaitDefault)
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	c.Source = cmp.Or(c.Source, "greenroom/"+c.Name)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, ShutdownTimeoutDefault)
}

// Message is one delivered event.
type Message struct {
	Event          events.Event
	Subject        string
	Headers        nats.Header
	NumDelivered   uint64
	StreamSequence uint64
	// Data is the message as published.
	Data []byte
	// Published is when the stream stored the message.
	Published time.Time
	// Invalid is why the message could not be decoded or validated, set
	// only for ConsumerConfig.Invalid.
	Invalid error
}

// Time is when the event was created: its CloudEvents time, or, when the
// event has none (the attribute is optional), when the stream stored it.
func (m Message) Time() time.Time {
	if !m.Event.Time.IsZero() {
		return m.Event.Time
	}
	return m.Published
}

// Handler handles one event. Returning nil acks it; an error marked
// Permanent (or a decoding error) dead-letters it; any other error
// redelivers it with backoff until MaxDeliver, then dead-letters it.
type Handler func(ctx context.Context, m Message) error

// DeadLetterSubject is where a consumer reports messages it gave up on.
func DeadLetterSubject(consumer string) string { return "greenroom.dead." + consumer }

// Consumer runs a durable pull consumer. It is a startstop.Service: Start
// creates (or updates) the durable consumer and consumes in the
// background; Stop, or the end of Start's context, stops pulling and
// waits for the handlers in flight, at most ShutdownTimeout.
type Consumer struct {
	startstop.BaseStartStop
	cfg       ConsumerConfig
	js        jetstream.JetStream
	pub       *Publisher
	validator Validator
	log       *zap.Logger
	handler   Handler
	metrics   *consumerMetrics
}

// NewConsumer returns the consumer cfg describes; nothing is created on
// the server until Start. validator, when set, checks each event against
// its schema before the handler sees it; a failure dead-letters the
// message.
func NewConsumer(js jetstream.JetStream, cfg ConsumerConfig, validator Validator, log *zap.Logger, h Handler) (*Consumer, error) {
	cfg.withDefaults()
	if cfg.Name == "" || len(cfg.FilterSubjects) == 0 || h == nil {
		return nil, errors.New("a consumer needs a name, subjects and a handler")
	}
	metrics, err := newConsumerMetrics(cfg.Registerer, js, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", cfg.Name, err)
	}
	return &Consumer{
		cfg: cfg, js: js, pub: NewPublisher(js, nil), validator: validator,
		log: log.With(zap.String("consumer", cfg.Name)), handler: h, metrics: metrics,
	}, nil
}

// Start creates (or updates) the durable consumer on the GREENROOM stream
// and consumes in the background until ctx is done or Stop. Then it stops
// pulling and waits for the handlers in flight to finish (each gets its
// message's ack), at most ShutdownTimeout: past it, it cancels their
// context and stops with ErrShutdownTimeout without waiting for them any
// longer.
func (c *Consumer) Start(ctx context.Context) error {
	ctx, shouldStart, stopped := c.StartInit(ctx)
	if !shouldStart {
		return nil
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable:        c.cfg.Name,
		Description:    "greenroom " + c.cfg.Name,
		FilterSubjects: c.cfg.FilterSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.cfg.AckWait,
		MaxDeliver:     c.cfg.MaxDeliver,
		// Messages beyond the handlers' slots wait in the replica with
		// in-progress acks; this bounds how many.
		MaxAckPending: c.cfg.totalConcurrency() * 4,
		// A consumer created after events were published (a service
		// started late, or added later) still sees them; handlers are
		// idempotent, so replaying history is safe.
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		err = fmt.Errorf("creating consumer %s: %w", c.cfg.Name, err)
		stopped(err)
		return err
	}
	defaultLane := make(chan struct{}, c.cfg.Concurrency)
	laneSems := make([]chan struct{}, len(c.cfg.Lanes))
	for i, l := range c.cfg.Lanes {
		laneSems[i] = make(chan struct{}, max(l.Concurrency, 1))
	}
	slotFor := func(subject string) chan struct{} {
		for i, l := range c.cfg.Lanes {
			if l.matches(subject) {
				return laneSems[i]
			}
		}
		return defaultLane
	}
	var wg sync.WaitGroup
	// Handlers run on their own context so that shutdown lets them finish
	// and ack instead of abandoning half-done work to redelivery, until
	// the shutdown timeout cancels it.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		// Never block here: the client delivers messages one at a time
		// from this callback. A message waits for a slot of its lane in
		// its own goroutine, kept alive by in-progress acks.
		slot := slotFor(msg.Subject())
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := c.keepAlive(handlerCtx, msg)
			defer stop()
			select {
			case slot <- struct{}{}:
			case <-handlerCtx.Done():
				return // shut down before its turn: redelivered
			}
			defer func() { <-slot }()
			c.handle(handlerCtx, msg)
		}()
	}, jetstream.PullMaxMessages(c.cfg.totalConcurrency()), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			c.log.Warn("consume error", zap.Error(err))
		}
	}))
	if err != nil {
		cancelHandlers()
		err = fmt.Errorf("consuming %s: %w", c.cfg.Name, err)
		stopped(err)
		return err
	}
	go func() {
		defer cancelHandlers()
		<-ctx.Done()
		stopped(c.drain(cc, &wg, cancelHandlers))
	}()
	return nil
}

// drain stops pulling and waits for the handlers in flight, at most
// ShutdownTimeout.
func (c *Consumer) drain(cc jetstream.ConsumeContext, wg *sync.WaitGroup, cancelHandlers context.CancelFunc) error {
	deadline, stop := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer stop()
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-deadline.Done():
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-deadline.Done():
	}
	cancelHandlers()
	c.log.Warn("shutdown timeout: leaving the handlers still running; their messages will be redelivered",
		zap.Duration("shutdown_timeout", c.cfg.ShutdownTimeout))
	return ErrShutdownTimeout
}

func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		c.log.Error("message without metadata", zap.Error(err))
		_ = msg.Term()
		return
	}
	m := Message{Subject: msg.Subject(), Headers: msg.Headers(), NumDelivered: md.NumDelivered, StreamSequence: md.Sequence.Stream,
		Data: msg.Data(), Published: md.Timestamp}
	log := c.log.With(zap.String("subject", m.Subject), zap.Uint64("stream_seq", m.StreamSequence), zap.Uint64("delivery", m.NumDelivered))
	if m.NumDelivered > 1 {
		c.metrics.redeliveries.Inc()
	}

	// The schema check first: its errors name the offending fields. Both
	// accept any spec-valid CloudEvent and ignore unknown fields; the
	// validator's errors already match events.ErrMalformed.
	if c.validator != nil {
		err = c.validator.ValidateReceived(msg.Data())
	}
	ev, derr := events.Decode(msg.Data())
	m.Event = ev
	if err == nil {
		err = derr
	}
	switch {
	case err == nil:
		err = c.runHandler(ctx, c.handler, m)
	case c.cfg.Invalid != nil:
		m.Invalid = err
		err = c.runHandler(ctx, c.cfg.Invalid, m)
	}
	switch {
	case err == nil:
		if aerr := msg.Ack(); aerr != nil {
			log.Warn("ack failed", zap.Error(aerr))
		}
		c.metrics.handledAs(OutcomeAcked)
	case IsPermanent(err) || m.NumDelivered >= uint64(c.cfg.MaxDeliver):
		log.Error("dead-lettering message", zap.Error(err))
		c.deadLetter(ctx, msg, m, err)
	default:
		delay := retryDelay(m.NumDelivered)
		log.Warn("handler failed, will retry", zap.Error(err), zap.Duration("retry_in", delay))
		_ = msg.NakWithDelay(delay)
		c.metrics.handledAs(OutcomeRetried)
	}
}

// keepAlive sends in-progress acks for msg every AckWait/3 until stopped,
// so that neither a message waiting for a slot nor a long handler is
// redelivered while it is being worked on; or until ctx is done (the
// shutdown timeout gave up on its handler), so that it is redelivered.
func (c *Consumer) keepAlive(ctx context.Context, msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// runHandler calls the handler and turns a panic into a retryable error,
// so that one bad message never crashes the service.
func (c *Consumer) runHandler(ctx context.Context, h Handler, m Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return h(ctx, m)
}

func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, m Message, cause error) {
	payload := string(msg.Data())
	if !utf8.ValidString(payload) {
		payload = "base64:" + base64.StdEncoding.EncodeToString(msg.Data())
	}
	ev, err := events.NewWithID(
		fmt.Sprintf("dead-%s-%d", c.cfg.Name, m.StreamSequence), c.cfg.Source, events.TypeDeadLetter,
		events.DeadLetter{
			Consumer: c.cfg.Name, StreamSequence: m.StreamSequence, Subject: m.Subject,
			NumDelivered: m.NumDelivered, Reason: cause.Error(), Payload: payload,
		})
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = c.pub.Publish(pctx, DeadLetterSubject(c.cfg.Name), ev, "")
		cancel()
	}
	if err != nil {
		// Not terminating keeps the message for redelivery rather than
		// losing it without a trace.
		// Past MaxDeliver the server will not redeliver: the message then
		// stays only in the stream, found by its sequence in this log line.
		c.log.Error("dead-lettering failed; the message is kept in the stream only", zap.Uint64("stream_seq", m.StreamSequence),
			zap.String("subject", m.Subject), zap.Error(err))
		_ = msg.NakWithDelay(RetryDelayMax)
		c.metrics.handledAs(OutcomeDeadLetterFailed)
		return
	}
	_ = msg.TermWithReason(truncate(cause.Error(), 200))
	c.metrics.deadLetters.Inc()
	c.metrics.handledAs(OutcomeDeadLettered)
}

func retryDelay(numDelivered uint64) time.Duration {
	d := RetryDelayMin
	for i := uint64(1); i < numDelivered && d < RetryDelayMax; i++ {
		d *= 2
	}
	return min(d, RetryDelayMax)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
