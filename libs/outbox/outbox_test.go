package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
)

func TestEventLeavesOnlyWithItsCommittedState(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	relay := deps.NewRelay()

	data := events.ConfigChanged{Kind: "zone", Op: "created", ID: "0190c0de-0000-7000-8000-000000000001", Name: "z"}
	// A rolled-back transaction leaves nothing to publish.
	tx := env.DB.MustBegin()
	if _, err := outbox.Emit(ctx, tx, "test", "greenroom.config.changed.zone", events.TypeConfigChanged, data, ""); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback()
	if res, err := relay.RunOnce(ctx); err != nil || res.Published != 0 {
		t.Fatalf("after rollback: %+v %v", res, err)
	}
	// A committed one is published once, with its id as Nats-Msg-Id.
	var ev events.Event
	err := db.InTx(ctx, env.DB, func(tx *sqlx.Tx) error {
		var err error
		ev, err = outbox.Emit(ctx, tx, "test", "greenroom.config.changed.zone", events.TypeConfigChanged, data, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := relay.RunOnce(ctx); err != nil || res.Published != 1 {
		t.Fatalf("after commit: %+v %v", res, err)
	}
	msg, err := deps.Stream.GetLastMsgForSubject(ctx, "greenroom.config.changed.zone")
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get(jetstream.MsgIDHeader) != ev.ID {
		t.Fatalf("Nats-Msg-Id %q, want %q", msg.Header.Get(jetstream.MsgIDHeader), ev.ID)
	}
	if err := deps.Validator.Validate(msg.Data); err != nil {
		t.Fatal(err)
	}
}

// TestCrashBetweenPublishAndDeleteLosesNothingAndDuplicatesNothing
// simulates a relay that published but died before deleting its rows: the
// next pass publishes the same ids again and the stream stores them once.
func TestCrashBetweenPublishAndDeleteLosesNothingAndDuplicatesNothing(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	ev, err := events.New("test", events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", Op: "updated", ID: "0190c0de-0000-7000-8000-000000000002", Name: "z"})
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.Enqueue(ctx, env.DB, "greenroom.config.changed.zone", ev, ""); err != nil {
		t.Fatal(err)
	}
	// "Crash": the event was published, the row was not deleted.
	if _, err := deps.Publisher.Publish(ctx, "greenroom.config.changed.zone", ev, ""); err != nil {
		t.Fatal(err)
	}
	if res, err := deps.NewRelay().RunOnce(ctx); err != nil || res.Published != 1 {
		t.Fatalf("relay pass: %+v %v", res, err)
	}
	info, err := deps.Stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want exactly 1", info.State.Msgs)
	}
	var left int
	if err := env.DB.Get(&left, `SELECT count(*) FROM outbox`); err != nil || left != 0 {
		t.Fatalf("outbox rows left: %d %v", left, err)
	}
}

func TestRelayWakesOnInsertWithoutWaitingForItsPoll(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	relay := outbox.NewRelay(outbox.RelayConfig{DatabaseURL: env.DatabaseURL, PollInterval: time.Hour}, env.DB, deps.Publisher, deps.Log)
	relay.TestSignals = make(chan outbox.RelayResult, 16)
	apptest.Run(t, func(ctx context.Context) error { relay.Start(ctx); return nil })
	rec := apptest.NewRecorder(t, deps.NC)
	// The first pass runs after LISTEN is registered.
	<-relay.TestSignals
	ev, _ := events.New("test", events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", Op: "deleted", ID: "0190c0de-0000-7000-8000-000000000003", Name: "z"})
	if err := outbox.Enqueue(context.Background(), env.DB, "greenroom.config.changed.zone", ev, ""); err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, "greenroom.config.changed.zone", "", 5*time.Second)
}

func TestEventBreakingItsSchemaIsDeadLetteredNotRetriedForever(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	rec := apptest.NewRecorder(t, deps.NC)
	bad, _ := events.New("test", events.TypeConfigChanged, events.ConfigChanged{Kind: "not-a-kind", Op: "created", ID: "x", Name: "z"})
	good, _ := events.New("test", events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", Op: "created", ID: "0190c0de-0000-7000-8000-000000000005", Name: "z"})
	for _, ev := range []events.Event{bad, good} {
		if err := outbox.Enqueue(ctx, env.DB, "greenroom.config.changed.zone", ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := deps.NewRelay().RunOnce(ctx); err != nil || res.Published != 2 {
		t.Fatalf("relay pass: %+v %v", res, err)
	}
	rec.Wait(t, outbox.DeadLetterSubject, "", 5*time.Second)
	got := rec.Wait(t, "greenroom.config.changed.zone", "", 5*time.Second)
	if got.Event.ID != good.ID {
		t.Fatalf("the valid event behind the bad one must be published, got %s", got.Event.ID)
	}
}
