package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/startstop"
)

func publishChange(t *testing.T, pub *bus.Publisher, name string) events.Event {
	t.Helper()
	ev, err := events.New("test", events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", Op: "created", ID: "0190c0de-0000-7000-8000-000000000001", Name: name, Actor: events.Actor{Type: events.ActorSystem, Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(context.Background(), "greenroom.config.changed.zone", ev, ""); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestFailingMessageIsDeadLetteredAfterMaxDeliverAndOthersStillFlow(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	rec := apptest.NewRecorder(t, deps.NC)
	var attempts, served atomic.Int32
	c, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{
		Name: "flaky", FilterSubjects: []string{"greenroom.config.changed.>"}, MaxDeliver: 3,
	}, deps.Validator, deps.Log, func(ctx context.Context, m bus.Message) error {
		var ch events.ConfigChanged
		if err := m.Event.DecodeData(&ch); err != nil {
			return err
		}
		switch ch.Name {
		case "always-fails":
			attempts.Add(1)
			return errors.New("boom")
		case "panics":
			attempts.Add(1)
			panic("handler bug")
		}
		served.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, c)
	publishChange(t, deps.Publisher, "always-fails")
	publishChange(t, deps.Publisher, "panics")
	publishChange(t, deps.Publisher, "fine")
	apptest.Eventually(t, 20*time.Second, "two dead letters", func() bool {
		return len(rec.Find(bus.DeadLetterSubject("flaky"), "")) == 2
	})
	if got := attempts.Load(); got != 6 {
		t.Fatalf("the two failing messages were tried %d times, want 3 each", got)
	}
	if served.Load() != 1 {
		t.Fatalf("the good message was served %d times", served.Load())
	}
	for _, r := range rec.Find(bus.DeadLetterSubject("flaky"), "") {
		var d events.DeadLetter
		if err := r.Event.DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		if d.NumDelivered != 3 || d.Consumer != "flaky" {
			t.Fatalf("dead letter %+v", d)
		}
	}
}

func TestSlowLaneDoesNotHoldUpOtherSubjects(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	release := make(chan struct{})
	var slowStarted, fastServed atomic.Int32
	c, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{
		Name: "laned", FilterSubjects: []string{"greenroom.config.changed.>"}, Concurrency: 1,
		Lanes: []bus.Lane{{Subjects: []string{"greenroom.config.changed.pool"}, Concurrency: 1}},
	}, deps.Validator, deps.Log, func(ctx context.Context, m bus.Message) error {
		if m.Subject == "greenroom.config.changed.pool" {
			slowStarted.Add(1)
			<-release
			return nil
		}
		fastServed.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, c)
	defer close(release)
	for i := range 3 {
		ev, _ := events.New("test", events.TypeConfigChanged, events.ConfigChanged{Kind: "pool", Op: "created", ID: "0190c0de-0000-7000-8000-000000000001", Name: fmt.Sprint("p", i), Actor: events.Actor{Type: events.ActorSystem, Name: "test"}})
		if _, err := deps.Publisher.Publish(context.Background(), "greenroom.config.changed.pool", ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	apptest.Eventually(t, 10*time.Second, "the slow lane busy", func() bool { return slowStarted.Load() == 1 })
	for range 5 {
		publishChange(t, deps.Publisher, "zone")
	}
	apptest.Eventually(t, 10*time.Second, "zone changes served while the pool lane is busy", func() bool { return fastServed.Load() == 5 })
	if slowStarted.Load() != 1 {
		t.Fatalf("the slow lane ran %d at once, its concurrency is 1", slowStarted.Load())
	}
}

// TestShutdownIsBoundedByTheTimeoutWhenAHandlerNeverReturns: a handler
// that ignores its context and never returns does not hang shutdown; Stop
// returns, with ErrShutdownTimeout, once the timeout is over, and the message,
// never acked, is delivered again to the next consumer.
func TestShutdownIsBoundedByTheTimeoutWhenAHandlerNeverReturns(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	never := make(chan struct{})
	defer close(never) // let the stuck handler go when the test ends
	var started atomic.Int32
	cfg := bus.ConsumerConfig{Name: "stuck", FilterSubjects: []string{"greenroom.config.changed.>"},
		Concurrency: 1, ShutdownTimeout: 200 * time.Millisecond, AckWait: 2 * time.Second}
	c, err := bus.NewConsumer(deps.JS, cfg, deps.Validator, deps.Log, func(ctx context.Context, m bus.Message) error {
		started.Add(1)
		<-never // ignores ctx
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	publishChange(t, deps.Publisher, "zone")
	apptest.Eventually(t, 10*time.Second, "the handler running", func() bool { return started.Load() == 1 })

	stopped := make(chan struct{})
	go func() { c.Stop(); close(stopped) }()
	select {
	case <-stopped:
		if err := c.Err(); !errors.Is(err, bus.ErrShutdownTimeout) || !errors.Is(err, startstop.ErrShutdownTimeout) {
			t.Fatalf("the consumer stopped with %v, want ErrShutdownTimeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return: a handler that never returns hung shutdown")
	}

	// Not acked: the next replica gets it again.
	var again atomic.Int32
	c2, err := bus.NewConsumer(deps.JS, cfg, deps.Validator, deps.Log, func(ctx context.Context, m bus.Message) error {
		again.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, c2)
	apptest.Eventually(t, 30*time.Second, "the message delivered again", func() bool { return again.Load() >= 1 })
}
