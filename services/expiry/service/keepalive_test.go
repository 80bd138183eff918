package service_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	libapp "github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/services/expiry/adapters/postgres"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	ports "github.com/greenroom-dev/greenroom/services/expiry/ports/bus"
)

// keepalives counts the consumer's handled keepalives by outcome.
func keepalives(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, outcome := range []string{"extended", "not_running", "unknown_session"} {
		out[outcome], _ = apptest.Metric(t, reg, "greenroom_expiry_keepalives_total", map[string]string{"outcome": outcome})
	}
	return out
}

// Issue 10, point 3: greenroom.session.keepalive, consumed from JetStream by
// the expiry service's durable consumer, moves a running session's
// keepalive deadline and expires_at: the sweeper no longer ends it at the
// old deadline, and does at the new one. Keepalives for unknown or not
// running sessions are acknowledged and change nothing; an invalid one is
// dead-lettered; none stops the consumer.
func TestKeepaliveOnTheBusMovesTheDeadline(t *testing.T) {
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
	rec := apptest.NewRecorder(t, deps.NC)

	const expiration = 10 * time.Minute
	s := w.running("req-kept", sessions.Limits{TimeLimit: time.Hour, KeepaliveExpiration: expiration})
	starting := w.onDemand("req-starting")
	oldDeadline := s.KeepaliveAt.Time
	// The consumer's clock: a keepalive never counts from later than it.
	c := newClock(s.RunningAt.Time.Add(8 * time.Minute))
	reg := prometheus.NewRegistry()
	k, err := ports.NewKeepaliveConsumer(deps.JS, deps.Validator,
		app.ExtendSession{Sessions: postgres.NewKeepalives(deps.DB), Now: c.Now},
		ports.KeepaliveConfig{Source: deps.Source(), Registerer: reg}, log)
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(k.Collectors()...)
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		<-k.Stopped()
		if err := k.Err(); err != nil {
			t.Errorf("keepalive consumer: %v", err)
		}
	})

	publish := func(sessionID string, at time.Time) {
		t.Helper()
		ev, err := events.New("greenroom/gateway", events.TypeSessionKeepalive, events.SessionKeepalive{SessionID: sessionID})
		if err != nil {
			t.Fatal(err)
		}
		ev.Time = at.UTC()
		if _, err := deps.Publisher.Publish(ctx, events.TypeSessionKeepalive, ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	garbage := nats.NewMsg(events.TypeSessionKeepalive)
	garbage.Data = []byte(`{"specversion":"1.0","id":"x","type":"greenroom.session.keepalive","source":"t","data":{"session_id":"not-a-uuid"}}`)
	garbage.Header.Set(apptest.HeaderTestGarbage, "1")
	if err := deps.NC.PublishMsg(garbage); err != nil {
		t.Fatal(err)
	}
	publish(uuid.NewString(), c.Now())
	publish(starting.ID, c.Now())
	publish(s.ID, c.Now())

	apptest.Eventually(t, 10*time.Second, "each keepalive handled and the invalid one dead-lettered", func() bool {
		n := keepalives(t, reg)
		return n["extended"] == 1 && n["unknown_session"] == 1 && n["not_running"] == 1 &&
			len(rec.Find(bus.DeadLetterSubject(ports.ConsumerName), "")) == 1
	})
	// The dead letter is counted on the consumer's bus metrics.
	if v := apptest.MustMetric(t, reg, "greenroom_bus_dead_letters_total", map[string]string{"consumer": ports.ConsumerName}); v != 1 {
		t.Errorf("greenroom_bus_dead_letters_total{consumer=%q} = %v, want 1", ports.ConsumerName, v)
	}
	want := s.RunningAt.Time.Add(8*time.Minute + expiration)
	got := w.status(s.ID)
	if !got.KeepaliveAt.Time.Equal(want) || !got.ExpiresAt.Time.Equal(want) || !got.TimeLimitAt.Time.Equal(s.TimeLimitAt.Time) {
		t.Fatalf("after a keepalive 8m in: keepalive_at %v expires_at %v time_limit_at %v, want %v, %v and %v unchanged",
			got.KeepaliveAt.Time, got.ExpiresAt.Time, got.TimeLimitAt.Time, want, want, s.TimeLimitAt.Time)
	}
	if st := w.status(starting.ID); st.Status != sessions.Provisioning || st.ExpiresAt.Valid {
		t.Errorf("the session not running changed: %s expires_at %v", st.Status, st.ExpiresAt)
	}

	// An older keepalive (a redelivery, a replay) never shortens it, and
	// one stamped after the consumer's clock counts from the clock.
	publish(s.ID, s.RunningAt.Time.Add(time.Minute))
	c.Set(s.RunningAt.Time.Add(9 * time.Minute))
	publish(s.ID, s.RunningAt.Time.Add(40*time.Minute))
	apptest.Eventually(t, 10*time.Second, "two more keepalives handled", func() bool {
		return keepalives(t, reg)["extended"] == 3
	})
	want = s.RunningAt.Time.Add(9*time.Minute + expiration)
	if got := w.status(s.ID); !got.ExpiresAt.Time.Equal(want) {
		t.Fatalf("expires_at %v, want %v (the clock's 9m plus the expiration)", got.ExpiresAt.Time, want)
	}

	sweep := newClock(oldDeadline.Add(time.Second))
	// The session still provisioning is not what this test is about.
	sw := w.sweeper(sweep, app.SweeperConfig{ProvisioningTimeout: 24 * time.Hour})
	if res := mustRunOnce(t, sw); res.Total() != 0 || w.status(s.ID).Status != sessions.Running {
		t.Fatalf("at the old deadline: %+v, want the kept-alive session left running", res)
	}
	sweep.Set(want)
	if res := mustRunOnce(t, sw); res.KeepaliveMissed != 1 || res.Total() != 1 {
		t.Fatalf("at the new deadline: %+v, want one keepalive missed", res)
	}
	if got := w.status(s.ID).Status; got != sessions.Destroying {
		t.Fatalf("status %s, want destroying", got)
	}
}
