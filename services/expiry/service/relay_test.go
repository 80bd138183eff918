package service_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	libapp "github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// The service as main wires it — sweeper ticking plus the outbox relay —
// puts schema-valid events on the GREENROOM stream, with the request id
// header on those about a request.
func TestExpiryEventsReachTheStreamValid(t *testing.T) {
	w := newWorld(t)
	srv := natstest.Start(t)
	log := zaptest.NewLogger(t)
	ctx, cancel := context.WithCancel(context.Background())
	deps, err := libapp.Connect(ctx, "expiry", settings.Common{DatabaseURL: w.url, NatsURL: srv.ClientURL()}, log, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); deps.Close() })

	assigning := w.claimed("req-e2e-assign") // first: it claims the oldest staged session
	stuck := w.onDemand("req-e2e")
	past := time.Now().Add(-time.Minute)
	stale := w.staged(&past)
	destroying := w.destroying()

	c := newClock(time.Now().Add(time.Hour))
	sw := w.sweeper(c, app.SweeperConfig{Interval: 10 * time.Millisecond, Source: deps.Source()})
	sw.TestSignals.Init()
	for _, part := range []startstop.Service{deps.NewRelay(), sw} {
		if err := part.Start(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { <-part.Stopped() })
	}

	var fired app.SweepResult
	deadline := time.After(15 * time.Second)
	for fired.Total() < 4 {
		select {
		case res := <-sw.TestSignals.PassDone.C():
			fired = fired.Add(res)
		case <-deadline:
			t.Fatalf("sweeper fired %+v, want all four sessions", fired)
		}
	}
	if fired != (app.SweepResult{ProvisioningTimedOut: 1, StagedExpired: 1, AssignTimedOut: 1, DestroyRetried: 1}) {
		t.Fatalf("fired %+v", fired)
	}

	cons, err := deps.JS.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		subject, header string
		data            events.SessionExpired
		failed          events.SessionFailed
		destroy         events.SessionDestroy
	}
	var got []seen
	for len(got) < 6 {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if err := deps.Validator.Validate(msg.Data()); err != nil {
			t.Errorf("event on %s is invalid: %v", msg.Subject(), err)
		}
		ev, err := events.Decode(msg.Data())
		if err != nil {
			t.Fatal(err)
		}
		if ev.Source != "greenroom/expiry" {
			t.Errorf("source %q", ev.Source)
		}
		s := seen{subject: msg.Subject(), header: msg.Headers().Get(events.HeaderRequestID)}
		switch ev.Type {
		case events.TypeSessionFailed:
			s.failed = decode[events.SessionFailed](t, ev)
		case events.TypeSessionDestroy:
			s.destroy = decode[events.SessionDestroy](t, ev)
			if msg.Headers().Get("Nats-Msg-Id") != ev.ID {
				t.Errorf("session.destroy published with Nats-Msg-Id %q, want its id %q", msg.Headers().Get("Nats-Msg-Id"), ev.ID)
			}
		default:
			s.data = decode[events.SessionExpired](t, ev)
		}
		got = append(got, s)
	}

	var failed, expiredStuck, expiredStaged, failedAssign, expiredAssign, destroyRetry int
	for _, s := range got {
		switch {
		case s.subject == events.TypeSessionFailed && s.failed.SessionID == stuck.ID && s.header == "req-e2e" &&
			s.failed.Reason == events.ReasonProvisioningTimeout:
			failed++
		case s.subject == events.TypeSessionExpired && s.data.SessionID == stuck.ID && s.header == "req-e2e" &&
			s.data.Reason == events.ExpiredProvisioning:
			expiredStuck++
		case s.subject == events.TypeSessionExpired && s.data.SessionID == stale.ID && s.header == "" &&
			s.data.Reason == events.ExpiredStaged && s.data.StagingConfigID == w.stagingConfigID:
			expiredStaged++
		case s.subject == events.TypeSessionFailed && s.failed.SessionID == assigning.ID && s.header == "req-e2e-assign" &&
			s.failed.RequestID == "req-e2e-assign" && s.failed.Reason == events.ReasonAssignFailed:
			failedAssign++
		case s.subject == events.TypeSessionExpired && s.data.SessionID == assigning.ID && s.header == "req-e2e-assign" &&
			s.data.Reason == events.ExpiredAssigning && s.data.StagingConfigID == w.stagingConfigID:
			expiredAssign++
		case s.subject == events.TypeSessionDestroy && s.destroy.SessionID == destroying.ID &&
			s.destroy.Reason == domain.ReasonDestroyRetry:
			destroyRetry++
		default:
			t.Errorf("unexpected event %+v", s)
		}
	}
	if failed != 1 || expiredStuck != 1 || expiredStaged != 1 || failedAssign != 1 || expiredAssign != 1 || destroyRetry != 1 {
		t.Errorf("failed=%d expired(stuck)=%d expired(staged)=%d failed(assign)=%d expired(assign)=%d destroy(retry)=%d, want one each",
			failed, expiredStuck, expiredStaged, failedAssign, expiredAssign, destroyRetry)
	}

	// The relay deletes rows once JetStream acked them; wait for its commit.
	for end := time.Now().Add(10 * time.Second); ; {
		var left int
		if err := w.db.Get(&left, `SELECT count(*) FROM outbox`); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%d events left in the outbox after relaying", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
