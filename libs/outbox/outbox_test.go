package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
)

// source is the CloudEvents source of the events of a service named
// "test" (app.Deps.Source), whose relay publishes them.
const source = "greenroom/test"

func TestEventLeavesOnlyWithItsCommittedState(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	relay := deps.NewRelay()

	data := events.ConfigChanged{Kind: "zone", Op: "created", ID: "0190c0de-0000-7000-8000-000000000001", Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}}
	// A rolled-back transaction leaves nothing to publish.
	tx := env.DB.MustBegin()
	if _, err := outbox.Emit(ctx, tx, source, "greenroom.config.changed.zone", events.TypeConfigChanged, data, ""); err != nil {
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
		ev, err = outbox.Emit(ctx, tx, source, "greenroom.config.changed.zone", events.TypeConfigChanged, data, "")
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
	ev, err := events.New(source, events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", Op: "updated", ID: "0190c0de-0000-7000-8000-000000000002", Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}})
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
	relay.TestSignals.Init()
	apptest.Start(t, relay)
	rec := apptest.NewRecorder(t, deps.NC)
	// The first pass runs after LISTEN is registered.
	relay.TestSignals.PassDone.WaitOrTimeout(t, 30*time.Second)
	ev, _ := events.New(source, events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", Op: "deleted", ID: "0190c0de-0000-7000-8000-000000000003", Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}})
	if err := outbox.Enqueue(context.Background(), env.DB, "greenroom.config.changed.zone", ev, ""); err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, "greenroom.config.changed.zone", "", 5*time.Second)
}

// relayLockClass is outbox.go's first key of the partition locks.
const relayLockClass = 0x67726e72

// lockPartitionSQL takes the lock a relay of source $3 holds while it
// publishes partition $2 (outbox.go's publishPartition: the second key is
// the source's hash with the partition in its low bits).
const lockPartitionSQL = `SELECT pg_advisory_xact_lock($1, (hashtext($3) & ~$4::int) | $2)`

// TestRelayThatFoundAnotherPublishingLooksAgainSoon: a relay woken while
// another held the lock of a partition leaves its rows to it; but the other may
// have fetched its batch before the commit that woke this one, so this one
// looks again shortly instead of at its next poll (an hour here).
func TestRelayThatFoundAnotherPublishingLooksAgainSoon(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	relay := outbox.NewRelay(outbox.RelayConfig{DatabaseURL: env.DatabaseURL, PollInterval: time.Hour}, env.DB, deps.Publisher, deps.Log)
	relay.TestSignals.Init()
	apptest.Start(t, relay)
	rec := apptest.NewRecorder(t, deps.NC)
	relay.TestSignals.PassDone.WaitOrTimeout(t, 30*time.Second) // LISTEN registered

	// Another relay publishing: it holds every partition's lock (outbox.go's
	// relayLockClass) and has fetched its batches already.
	other, err := env.DB.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Rollback() }()
	if _, err := other.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, (hashtext('') & ~$2::int) | p) FROM generate_series(0, $2) p`,
		relayLockClass, outbox.Partitions-1); err != nil {
		t.Fatal(err)
	}
	ev, _ := events.New(source, events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", Op: "deleted", ID: "0190c0de-0000-7000-8000-000000000009", Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}})
	if err := outbox.Enqueue(ctx, env.DB, "greenroom.config.changed.zone", ev, ""); err != nil {
		t.Fatal(err)
	}
	for {
		if res := relay.TestSignals.PassDone.WaitOrTimeout(t, 30*time.Second); res.Busy {
			break
		}
	}
	_ = other.Rollback() // the other finished without the new row
	rec.Wait(t, "greenroom.config.changed.zone", "", 30*time.Second)
}

func TestEventBreakingItsSchemaIsDeadLetteredNotRetriedForever(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	rec := apptest.NewRecorder(t, deps.NC)
	bad, _ := events.New(source, events.TypeConfigChanged, events.ConfigChanged{Kind: "not-a-kind", Op: "created", ID: "x", Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}})
	good, _ := events.New(source, events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", Op: "created", ID: "0190c0de-0000-7000-8000-000000000005", Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}})
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

// TestCommitterPublishesItsEventsWithoutARelay: events written in
// Direct.InTx are on the stream when InTx returns, with their ids as
// Nats-Msg-Id, and their rows are gone; no relay ran.
func TestCommitterPublishesItsEventsWithoutARelay(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	direct := outbox.NewDirect(env.DB, deps.Publisher, deps.Log, time.Hour)
	var evs []events.Event
	err := direct.InTx(ctx, env.DB, func(ctx context.Context, tx *sqlx.Tx) error {
		for i, op := range []string{"created", "updated"} {
			ev, err := outbox.Emit(ctx, tx, source, "greenroom.config.changed.zone", events.TypeConfigChanged,
				events.ConfigChanged{Kind: "zone", Op: op, ID: fmt.Sprintf("0190c0de-0000-7000-8000-00000000001%d", i), Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}}, "req-1")
			evs = append(evs, ev)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := deps.Stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages after InTx returned, want 2", info.State.Msgs)
	}
	for i, ev := range evs {
		msg, err := deps.Stream.GetMsg(ctx, info.State.FirstSeq+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
			t.Errorf("message %d: Nats-Msg-Id %q, want %q (in the order written)", i, got, ev.ID)
		}
		if got := msg.Header.Get(events.HeaderRequestID); got != "req-1" {
			t.Errorf("message %d: request id header %q", i, got)
		}
	}
	var left int
	if err := env.DB.Get(&left, `SELECT count(*) FROM outbox`); err != nil || left != 0 {
		t.Fatalf("outbox rows left: %d %v", left, err)
	}
}

// TestEventsOfACommitterThatCouldNotPublishAreLeftToTheRelay simulates a
// committer that dies between commit and publish (its NATS connection is
// gone): the events stay in the outbox, a relay leaves them to their
// committer during the grace and publishes them once, after it.
func TestEventsOfACommitterThatCouldNotPublishAreLeftToTheRelay(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	dead := env.Deps(t, "dead")
	dead.NC.Close()

	for _, tt := range []struct {
		name  string
		grace time.Duration
	}{{"within the grace", time.Hour}, {"after the grace", time.Millisecond}} {
		t.Run(tt.name, func(t *testing.T) {
			env.DB.MustExec(`DELETE FROM outbox`)
			direct := outbox.NewDirect(env.DB, dead.Publisher, deps.Log, tt.grace)
			var ev events.Event
			err := direct.InTx(ctx, env.DB, func(ctx context.Context, tx *sqlx.Tx) error {
				var err error
				ev, err = outbox.Emit(ctx, tx, source, "greenroom.config.changed.zone", events.TypeConfigChanged,
					events.ConfigChanged{Kind: "zone", Op: "deleted", ID: "0190c0de-0000-7000-8000-000000000020", Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}}, "")
				return err
			})
			if err != nil {
				t.Fatalf("the state committed; a failed publish is not the caller's error: %v", err)
			}
			var left int
			if err := env.DB.Get(&left, `SELECT count(*) FROM outbox WHERE id = $1`, ev.ID); err != nil || left != 1 {
				t.Fatalf("the unpublished event must stay in the outbox: %d rows %v", left, err)
			}
			relay := deps.NewRelay()
			if tt.grace == time.Hour {
				if res, err := relay.RunOnce(ctx); err != nil || res.Busy || res.Published != 0 {
					t.Fatalf("a relay took a row still its committer's (or did not look): %+v %v", res, err)
				}
				return
			}
			// The grace is over once the database's clock passed it.
			env.DB.MustExec(`SELECT pg_sleep(0.01)`)
			if res, err := relay.RunOnce(ctx); err != nil || res.Published != 1 {
				t.Fatalf("relay pass after the grace: %+v %v", res, err)
			}
			msg, err := deps.Stream.GetLastMsgForSubject(ctx, "greenroom.config.changed.zone")
			if err != nil {
				t.Fatal(err)
			}
			if msg.Header.Get(jetstream.MsgIDHeader) != ev.ID {
				t.Fatalf("Nats-Msg-Id %q, want %q", msg.Header.Get(jetstream.MsgIDHeader), ev.ID)
			}
			// Published once, and gone from the outbox.
			if res, err := relay.RunOnce(ctx); err != nil || res.Published != 0 {
				t.Fatalf("a second relay pass published again: %+v %v", res, err)
			}
			info, err := deps.Stream.Info(ctx, jetstream.WithSubjectFilter("greenroom.config.changed.zone"))
			if err != nil {
				t.Fatal(err)
			}
			if n := info.State.Subjects["greenroom.config.changed.zone"]; n != 1 {
				t.Fatalf("the stream holds %d messages on the subject, want 1", n)
			}
		})
	}
}

// TestRowsForTheirCommitterDoNotWakeTheRelay: only rows a relay must
// publish at once notify it.
func TestRowsForTheirCommitterDoNotWakeTheRelay(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	l := pq.NewListener(env.DatabaseURL, 100*time.Millisecond, time.Second, nil)
	t.Cleanup(func() { _ = l.Close() })
	if err := l.Listen(outbox.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	direct := outbox.NewDirect(env.DB, deps.Publisher, deps.Log, time.Hour)
	emit := func(ctx context.Context, tx *sqlx.Tx, id string) error {
		_, err := outbox.Emit(ctx, tx, source, "greenroom.config.changed.zone", events.TypeConfigChanged,
			events.ConfigChanged{Kind: "zone", Op: "created", ID: id, Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}}, "")
		return err
	}
	if err := direct.InTx(ctx, env.DB, func(ctx context.Context, tx *sqlx.Tx) error {
		return emit(ctx, tx, "0190c0de-0000-7000-8000-000000000030")
	}); err != nil {
		t.Fatal(err)
	}
	// Then one for the relays: the first notification is for it.
	if err := db.InTx(ctx, env.DB, func(tx *sqlx.Tx) error {
		return emit(ctx, tx, "0190c0de-0000-7000-8000-000000000031")
	}); err != nil {
		t.Fatal(err)
	}
	// A marker after both: the notifications before it are the inserts'
	// (notifications arrive in commit order).
	env.DB.MustExec(`SELECT pg_notify($1, 'marker')`, outbox.NotifyChannel)
	wakes := 0
	for {
		select {
		case n := <-l.Notify:
			if n == nil { // reconnected: start over would lose nothing here
				continue
			}
			if n.Extra == "marker" {
				if wakes != 1 {
					t.Fatalf("%d notifications for two inserts, want 1: the committer's row must not wake the relays", wakes)
				}
				return
			}
			wakes++
		case <-time.After(10 * time.Second):
			t.Fatal("the marker notification never came")
		}
	}
}

// TestTwoRelaysShareTheOutboxLosingNothingAndPublishingNothingTwice runs
// two relays (each with its own NATS connection, as two replicas would)
// on one database at the same time over the events of 64 sessions: both
// publish, every event is in the stream once, no row is published by both
// (their counts add up to the events written, without relying on the
// stream's Nats-Msg-Id dedup), and each session's events are in the stream
// in the order they were written.
func TestTwoRelaysShareTheOutboxLosingNothingAndPublishingNothingTwice(t *testing.T) {
	env := apptest.New(t)
	depsA, depsB := env.Deps(t, "a"), env.Deps(t, "b")
	ctx := context.Background()
	const sessions, perSession = 64, 20
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	// Written interleaved, one transaction each, as services would.
	want := map[string][]string{} // session → event ids in written order
	for range perSession {
		for _, sid := range ids {
			ev, err := outbox.Emit(ctx, env.DB, source, "greenroom.session.keepalive", events.TypeSessionKeepalive,
				events.SessionKeepalive{SessionID: sid}, "")
			if err != nil {
				t.Fatal(err)
			}
			want[sid] = append(want[sid], ev.ID)
		}
	}
	total := sessions * perSession

	cfg := outbox.RelayConfig{BatchSize: 8}
	relays := []*outbox.Relay{
		outbox.NewRelay(cfg, env.DB, depsA.Publisher, depsA.Log),
		outbox.NewRelay(cfg, env.DB, depsB.Publisher, depsB.Log),
	}
	published := make([]int, len(relays))
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, len(relays))
	for i, r := range relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			deadline := time.Now().Add(60 * time.Second)
			for time.Now().Before(deadline) {
				res, err := r.RunOnce(ctx)
				if err != nil {
					errs <- err
					return
				}
				published[i] += res.Published
				var left int
				if err := env.DB.Get(&left, `SELECT count(*) FROM outbox`); err != nil {
					errs <- err
					return
				}
				if left == 0 {
					return
				}
			}
			errs <- fmt.Errorf("relay %d: outbox not empty after 60s", i)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("relay a published %d, relay b %d, of %d", published[0], published[1], total)
	if published[0] == 0 || published[1] == 0 {
		t.Errorf("both relays must share the work: published %v", published)
	}
	if published[0]+published[1] != total {
		t.Errorf("relays published %d events in all, want %d: a row was published by both, or lost", published[0]+published[1], total)
	}

	info, err := depsA.Stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(total) {
		t.Fatalf("the stream holds %d messages, want %d", info.State.Msgs, total)
	}
	got := map[string][]string{}
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := depsA.Stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := events.Decode(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if seen[ev.ID] {
			t.Fatalf("event %s is in the stream twice", ev.ID)
		}
		seen[ev.ID] = true
		var data events.SessionKeepalive
		if err := ev.DecodeData(&data); err != nil {
			t.Fatal(err)
		}
		got[data.SessionID] = append(got[data.SessionID], ev.ID)
	}
	for _, sid := range ids {
		if !slices.Equal(got[sid], want[sid]) {
			t.Fatalf("session %s: events in the stream in the order %v, written %v", sid, got[sid], want[sid])
		}
	}
}

// TestRelayPublishesTheOtherPartitionsWhileOneIsBusy: a partition another
// relay holds does not hold up the others.
func TestRelayPublishesTheOtherPartitionsWhileOneIsBusy(t *testing.T) {
	env := apptest.New(t)
	deps := env.Deps(t, "test")
	ctx := context.Background()
	// Two sessions' events in different partitions.
	var evs []events.Event
	parts := map[int]bool{}
	for len(evs) < 2 {
		ev, err := outbox.Emit(ctx, env.DB, source, "greenroom.session.keepalive", events.TypeSessionKeepalive,
			events.SessionKeepalive{SessionID: uuid.NewString()}, "")
		if err != nil {
			t.Fatal(err)
		}
		var p int
		if err := env.DB.Get(&p, `SELECT `+outbox.PartitionSQL+` FROM outbox WHERE id = $1`, ev.ID); err != nil {
			t.Fatal(err)
		}
		if parts[p] {
			env.DB.MustExec(`DELETE FROM outbox WHERE id = $1`, ev.ID)
			continue
		}
		parts[p] = true
		evs = append(evs, ev)
		if len(evs) == 1 {
			// Another relay is publishing the first one's partition.
			other, err := env.DB.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = other.Rollback() }()
			other.MustExec(lockPartitionSQL, relayLockClass, p, deps.Source(), outbox.Partitions-1)
		}
	}
	res, err := deps.NewRelay().RunOnce(ctx)
	if err != nil || res.Published != 1 || !res.Busy {
		t.Fatalf("relay pass: %+v %v; want the free partition's event published and the busy one reported", res, err)
	}
	var left string
	if err := env.DB.Get(&left, `SELECT id FROM outbox`); err != nil || left != evs[0].ID {
		t.Fatalf("left in the outbox: %q %v; want the busy partition's %s", left, err, evs[0].ID)
	}
}

// TestRelayPublishesOnlyItsOwnServicesEvents: a service's relay leaves
// another service's rows to that service's relay, whose NATS user alone
// may publish them (README, "NATS users").
func TestRelayPublishesOnlyItsOwnServicesEvents(t *testing.T) {
	env := apptest.New(t)
	ctx := context.Background()
	deps := env.Deps(t, "test")
	other := env.Deps(t, "other")
	var mine, theirs events.Event
	err := db.InTx(ctx, env.DB, func(tx *sqlx.Tx) error {
		var err error
		if mine, err = outbox.Emit(ctx, tx, deps.Source(), "greenroom.config.changed.zone", events.TypeConfigChanged,
			events.ConfigChanged{Kind: "zone", Op: "created", ID: "0190c0de-0000-7000-8000-0000000000a1", Name: "z", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}}, ""); err != nil {
			return err
		}
		theirs, err = outbox.Emit(ctx, tx, other.Source(), "greenroom.config.changed.zone", events.TypeConfigChanged,
			events.ConfigChanged{Kind: "zone", Op: "created", ID: "0190c0de-0000-7000-8000-0000000000a2", Name: "y", Actor: events.Actor{Type: events.ActorSystem, Name: "test"}}, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := deps.NewRelay().RunOnce(ctx); err != nil || res.Published != 1 {
		t.Fatalf("test's relay: %+v %v, want its one event published", res, err)
	}
	var left []string
	if err := env.DB.Select(&left, `SELECT id FROM outbox ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != theirs.ID {
		t.Fatalf("left in the outbox: %v, want only other's %s (test's was %s)", left, theirs.ID, mine.ID)
	}
	if res, err := other.NewRelay().RunOnce(ctx); err != nil || res.Published != 1 {
		t.Fatalf("other's relay: %+v %v", res, err)
	}
}
