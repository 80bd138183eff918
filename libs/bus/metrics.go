package bus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a delivery, the outcome label of
// greenroom_bus_messages_handled_total.
const (
	OutcomeAcked            = "acked"
	OutcomeRetried          = "retried"
	OutcomeDeadLettered     = "dead_lettered"
	OutcomeDeadLetterFailed = "dead_letter_failed"
)

// InfoTimeout bounds the consumer info request made at each scrape of
// /metrics for the consumer lag gauges.
const InfoTimeout = 2 * time.Second

// consumerMetrics count what one consumer's replica did with its
// deliveries. The vectors are shared by every consumer registered on one
// registry (labelled by consumer), and each consumer's series start at 0,
// so that increase() sees the first redelivery or dead letter.
type consumerMetrics struct {
	handled      *prometheus.CounterVec
	redeliveries prometheus.Counter
	deadLetters  prometheus.Counter
	outcomes     map[string]prometheus.Counter
}

// newConsumerMetrics registers the consumer metrics of consumer on reg:
// its counters, and a collector that reads the durable consumer's info
// from the server at each scrape. reg nil means no metrics.
func newConsumerMetrics(reg prometheus.Registerer, js jetstream.JetStream, consumer string) (*consumerMetrics, error) {
	handled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "greenroom_bus_messages_handled_total",
		Help: "Deliveries handled by this replica's consumer, by outcome (acked, retried, dead_lettered, dead_letter_failed).",
	}, []string{"consumer", "outcome"})
	redeliveries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "greenroom_bus_redeliveries_total",
		Help: "Deliveries this replica's consumer handled that were not the message's first (NumDelivered > 1): retries after a failure, or messages whose ack wait ran out on a replica that stopped.",
	}, []string{"consumer"})
	deadLetters := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "greenroom_bus_dead_letters_total",
		Help: "Messages this replica's consumer gave up on and reported on greenroom.dead.<consumer>.",
	}, []string{"consumer"})
	if reg == nil {
		reg = prometheus.NewRegistry() // counted, never exposed
	}
	var err error
	if handled, err = registerShared(reg, handled); err != nil {
		return nil, err
	}
	if redeliveries, err = registerShared(reg, redeliveries); err != nil {
		return nil, err
	}
	if deadLetters, err = registerShared(reg, deadLetters); err != nil {
		return nil, err
	}
	if _, err := registerShared(reg, newInfoCollector(js, consumer)); err != nil {
		return nil, err
	}
	m := &consumerMetrics{
		handled: handled, redeliveries: redeliveries.WithLabelValues(consumer), deadLetters: deadLetters.WithLabelValues(consumer),
		outcomes: map[string]prometheus.Counter{},
	}
	for _, o := range []string{OutcomeAcked, OutcomeRetried, OutcomeDeadLettered, OutcomeDeadLetterFailed} {
		m.outcomes[o] = handled.WithLabelValues(consumer, o)
	}
	return m, nil
}

// handledAs counts one delivery's outcome.
func (m *consumerMetrics) handledAs(outcome string) { m.outcomes[outcome].Inc() }

// registerShared registers c on reg, or returns the collector already
// registered there under the same description: consumers of one service
// share the vectors, and a consumer made again (a restarted part) reuses
// its info collector, which reads the durable consumer by name.
func registerShared[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("registering bus metrics: %w", err)
}

// infoCollector reports a durable consumer's state as the server sees it,
// read at each scrape with a request bounded by InfoTimeout. Every
// replica of a service shares the durable consumer, so every replica
// reports the same values: aggregate them with max, never sum.
type infoCollector struct {
	js       jetstream.JetStream
	consumer string
	failures atomic.Uint64

	pending, ackPending, redelivered, errors *prometheus.Desc
}

func newInfoCollector(js jetstream.JetStream, consumer string) *infoCollector {
	labels := prometheus.Labels{"consumer": consumer}
	return &infoCollector{
		js: js, consumer: consumer,
		pending: prometheus.NewDesc("greenroom_bus_consumer_pending_messages",
			"Messages on the consumer's subjects not yet delivered (JetStream consumer info num_pending): how far the service is behind.",
			nil, labels),
		ackPending: prometheus.NewDesc("greenroom_bus_consumer_ack_pending_messages",
			"Messages delivered and not yet acknowledged (consumer info num_ack_pending): being handled, waiting for a slot, or waiting for a retry.",
			nil, labels),
		redelivered: prometheus.NewDesc("greenroom_bus_consumer_redelivered_messages",
			"Messages not yet acknowledged that were delivered more than once (consumer info num_redelivered).",
			nil, labels),
		errors: prometheus.NewDesc("greenroom_bus_consumer_info_errors_total",
			"Scrapes at which the consumer's info could not be read (the lag gauges are then left out).",
			nil, labels),
	}
}

// Describe sends the descriptions of the consumer's gauges.
func (c *infoCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
	ch <- c.errors
}

// Collect reads the consumer's info from the server. A consumer not yet
// created (the service is starting) or a server that does not answer in
// time leaves the gauges out rather than report a stale or false zero.
func (c *infoCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), InfoTimeout)
	defer cancel()
	info, err := c.info(ctx)
	if err != nil {
		c.failures.Add(1)
	} else {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending))
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending))
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered))
	}
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(c.failures.Load()))
}

func (c *infoCollector) info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	cons, err := c.js.Consumer(ctx, StreamName, c.consumer)
	if err != nil {
		return nil, err
	}
	return cons.CachedInfo(), nil
}
