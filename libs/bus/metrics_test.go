package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// TestConsumerCountsOutcomesRedeliveriesAndDeadLetters: a message that
// always fails (dead-lettered at its third delivery), one that fails once,
// and one that is fine show up in the consumer's counters as the consumer
// handled them; the counters exist at 0 before anything happened.
func TestConsumerCountsOutcomesRedeliveriesAndDeadLetters(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	rec := apptest.NewRecorder(t, deps.NC)
	reg := prometheus.NewRegistry()
	var flaky atomic.Int32
	c, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{
		Name: "counted", FilterSubjects: []string{"greenroom.config.changed.>"}, MaxDeliver: 3, Registerer: reg,
	}, deps.Validator, deps.Log, func(ctx context.Context, m bus.Message) error {
		var ch events.ConfigChanged
		if err := m.Event.DecodeData(&ch); err != nil {
			return err
		}
		switch ch.Name {
		case "always-fails":
			return errors.New("boom")
		case "fails-once":
			if flaky.Add(1) == 1 {
				return errors.New("not yet")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	consumer := map[string]string{"consumer": "counted"}
	for _, name := range []string{"greenroom_bus_dead_letters_total", "greenroom_bus_redeliveries_total"} {
		if v := apptest.MustMetric(t, reg, name, consumer); v != 0 {
			t.Fatalf("%s starts at %v", name, v)
		}
	}
	apptest.Start(t, c)
	publishChange(t, deps.Publisher, "always-fails")
	publishChange(t, deps.Publisher, "fails-once")
	publishChange(t, deps.Publisher, "fine")
	outcome := func(o string) float64 {
		return apptest.MustMetric(t, reg, "greenroom_bus_messages_handled_total", map[string]string{"consumer": "counted", "outcome": o})
	}
	apptest.Eventually(t, 20*time.Second, "the dead letter and both good messages acked", func() bool {
		return len(rec.Find(bus.DeadLetterSubject("counted"), "")) == 1 && outcome(bus.OutcomeAcked) == 2 &&
			outcome(bus.OutcomeDeadLettered) == 1
	})
	if got := apptest.MustMetric(t, reg, "greenroom_bus_dead_letters_total", consumer); got != 1 {
		t.Errorf("dead letters %v, want 1", got)
	}
	// always-fails: deliveries 2 and 3; fails-once: delivery 2.
	if got := apptest.MustMetric(t, reg, "greenroom_bus_redeliveries_total", consumer); got != 3 {
		t.Errorf("redeliveries %v, want 3", got)
	}
	// always-fails: deliveries 1 and 2; fails-once: delivery 1.
	if got := outcome(bus.OutcomeRetried); got != 3 {
		t.Errorf("retried %v, want 3", got)
	}
	if got := outcome(bus.OutcomeDeadLetterFailed); got != 0 {
		t.Errorf("dead_letter_failed %v, want 0", got)
	}
}

// TestConsumerLagIsReadFromTheServerAtScrapeTime: the lag gauges are the
// durable consumer's info as the server reports it when /metrics is read:
// absent (and an error counted) before the consumer exists, then the
// messages waiting and in flight while the handler is held, then none.
func TestConsumerLagIsReadFromTheServerAtScrapeTime(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	reg := prometheus.NewRegistry()
	release := make(chan struct{})
	var served atomic.Int32
	c, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{
		Name: "lagging", FilterSubjects: []string{"greenroom.config.changed.>"}, Concurrency: 1, Registerer: reg,
	}, deps.Validator, deps.Log, func(ctx context.Context, m bus.Message) error {
		<-release
		served.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	consumer := map[string]string{"consumer": "lagging"}
	if _, ok := apptest.Metric(t, reg, "greenroom_bus_consumer_pending_messages", consumer); ok {
		t.Fatal("a lag gauge for a consumer that does not exist yet")
	}
	// That was one scrape, this is the second.
	if got := apptest.MustMetric(t, reg, "greenroom_bus_consumer_info_errors_total", consumer); got != 2 {
		t.Fatalf("info errors %v after two scrapes of a missing consumer, want 2", got)
	}

	const n = 10
	for range n {
		publishChange(t, deps.Publisher, "zone")
	}
	apptest.Start(t, c)
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	// Concurrency 1 bounds the messages in flight (MaxAckPending 4): the
	// rest wait on the server.
	var pending, ackPending float64
	apptest.Eventually(t, 10*time.Second, "the consumer holding what it may and the rest pending", func() bool {
		pending = apptest.MustMetric(t, reg, "greenroom_bus_consumer_pending_messages", consumer)
		ackPending = apptest.MustMetric(t, reg, "greenroom_bus_consumer_ack_pending_messages", consumer)
		return ackPending == 4 && pending == n-4
	})
	if v := apptest.MustMetric(t, reg, "greenroom_bus_consumer_redelivered_messages", consumer); v != 0 {
		t.Errorf("redelivered %v, want 0", v)
	}
	close(release)
	released = true
	apptest.Eventually(t, 10*time.Second, "every message served and the lag gone", func() bool {
		return served.Load() == n &&
			apptest.MustMetric(t, reg, "greenroom_bus_consumer_pending_messages", consumer) == 0 &&
			apptest.MustMetric(t, reg, "greenroom_bus_consumer_ack_pending_messages", consumer) == 0
	})
}

// TestConsumersOfOneServiceShareTheirMetrics: two consumers registered on
// one registry (and one made again under the same name) do not collide;
// each has its own series.
func TestConsumersOfOneServiceShareTheirMetrics(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	reg := prometheus.NewRegistry()
	h := func(ctx context.Context, m bus.Message) error { return nil }
	for _, name := range []string{"one", "two", "one"} {
		if _, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{Name: name, FilterSubjects: []string{"greenroom.config.changed.>"},
			Registerer: reg}, deps.Validator, deps.Log, h); err != nil {
			t.Fatalf("consumer %s: %v", name, err)
		}
	}
	for _, name := range []string{"one", "two"} {
		apptest.MustMetric(t, reg, "greenroom_bus_dead_letters_total", map[string]string{"consumer": name})
	}
}
