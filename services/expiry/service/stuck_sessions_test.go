package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// A claimed staged session whose assign command never reports back (its
// session.assigned was dead-lettered, the provisioner is down) fails after
// AssignTimeout: the user's request gets session.failed instead of
// hanging, and session.expired makes the provisioner remove the container.
func TestSessionStuckInAssigningFailsAfterAssignTimeout(t *testing.T) {
	w := newWorld(t)
	v := validator(t)
	s := w.claimed("req-assign")
	c := newClock(s.AssignedAt.Time.Add(2*time.Minute - time.Second))
	sw := w.sweeper(c, app.SweeperConfig{})

	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("before the timeout: %+v, want nothing fired", res)
	}
	if got := w.status(s.ID).Status; got != sessions.Assigning {
		t.Fatalf("before the timeout: status %s, want assigning", got)
	}

	c.Set(s.AssignedAt.Time.Add(2*time.Minute + time.Second))
	if res := mustRunOnce(t, sw); res != (app.SweepResult{AssignTimedOut: 1}) {
		t.Fatalf("after the timeout: %+v, want one assign timeout", res)
	}
	got := w.status(s.ID)
	if got.Status != sessions.Failed || got.FailureReason != "assign_failed: no outcome within 2m0s" || !got.DestroyedAt.Valid {
		t.Fatalf("session = %s %q destroyed_at=%v, want failed with the timeout as reason", got.Status, got.FailureReason, got.DestroyedAt)
	}

	evs := w.outbox(v)
	if len(evs) != 2 {
		t.Fatalf("outbox holds %d events, want session.failed and session.expired", len(evs))
	}
	failed, expired := evs[0], evs[1]
	if failed.Subject != events.TypeSessionFailed || failed.RequestID != "req-assign" {
		t.Errorf("first event on %s with request header %q, want session.failed for req-assign", failed.Subject, failed.RequestID)
	}
	f := decode[events.SessionFailed](t, failed.Event)
	if f.RequestID != "req-assign" || f.SessionID != s.ID || f.Reason != events.ReasonAssignFailed ||
		!strings.HasPrefix(f.Detail, "no outcome within 2m0s: ") || !strings.Contains(f.Detail, "still assigning 2m1s after it was claimed") {
		t.Errorf("session.failed data = %+v", f)
	}
	if expired.Subject != events.TypeSessionExpired || expired.RequestID != "req-assign" {
		t.Errorf("second event on %s with request header %q, want session.expired for req-assign", expired.Subject, expired.RequestID)
	}
	if e := decode[events.SessionExpired](t, expired.Event); e != (events.SessionExpired{
		SessionID: s.ID, RequestID: "req-assign", StagingConfigID: w.stagingConfigID, Reason: events.ExpiredAssigning,
	}) {
		t.Errorf("session.expired data = %+v", e)
	}

	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Errorf("second pass fired again: %+v", res)
	}
}

func TestAssignTimeoutIsConfigurable(t *testing.T) {
	w := newWorld(t)
	s := w.claimed("req-assign-fast")
	c := newClock(s.AssignedAt.Time.Add(29 * time.Second))
	sw := w.sweeper(c, app.SweeperConfig{AssignTimeout: 30 * time.Second})
	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("before 30s: %+v", res)
	}
	c.Set(s.AssignedAt.Time.Add(31 * time.Second))
	if res := mustRunOnce(t, sw); res != (app.SweepResult{AssignTimedOut: 1}) {
		t.Fatalf("after 30s: %+v, want one assign timeout", res)
	}
	if got := w.status(s.ID).FailureReason; got != "assign_failed: no outcome within 30s" {
		t.Errorf("failure_reason %q", got)
	}
}

// The provisioner completing the assign and the timer firing race on the
// session's row: whichever commits first wins, the other sees the session
// moved on, and the request gets exactly one outcome.
func TestAssignOutcomeAndAssignTimeoutNeverBothHappen(t *testing.T) {
	ctx := context.Background()
	t.Run("outcome first", func(t *testing.T) {
		w := newWorld(t)
		s := w.claimed("req-outcome-first")
		sw := w.sweeper(newClock(s.AssignedAt.Time.Add(time.Hour)), app.SweeperConfig{})

		// The provisioner's CompleteAssign, caught before it commits.
		tx, err := w.db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := sessions.Transition(ctx, tx, s.ID, sessions.Assigning, sessions.Running, sessions.Change{}); err != nil {
			t.Fatal(err)
		}
		if res := mustRunOnce(t, sw); res.Total() != 0 {
			t.Fatalf("while the outcome commits: %+v, want the locked session skipped", res)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if res := mustRunOnce(t, sw); res.Total() != 0 {
			t.Fatalf("after the outcome: %+v, want nothing fired", res)
		}
		if got := w.status(s.ID).Status; got != sessions.Running {
			t.Fatalf("status %s, want running", got)
		}
	})
	t.Run("timer first", func(t *testing.T) {
		w := newWorld(t)
		s := w.claimed("req-timer-first")
		sw := w.sweeper(newClock(s.AssignedAt.Time.Add(time.Hour)), app.SweeperConfig{})
		if res := mustRunOnce(t, sw); res.AssignTimedOut != 1 {
			t.Fatalf("%+v, want one assign timeout", res)
		}
		_, err := sessions.Transition(ctx, w.db, s.ID, sessions.Assigning, sessions.Running, sessions.Change{})
		if !errors.Is(err, sessions.ErrStale) {
			t.Fatalf("completing the assign after the timeout: %v, want ErrStale", err)
		}
	})
}

// A session left in destroying (its destroy or expired event was
// dead-lettered, or the container could not be removed) is asked to be
// destroyed again after DestroyTimeout, and then at most once per
// DestroyTimeout, each time under a new deterministic event id.
func TestSessionStuckInDestroyingIsAskedToDestroyAgain(t *testing.T) {
	w := newWorld(t)
	v := validator(t)
	s := w.destroying()
	entered := s.UpdatedAt
	c := newClock(entered.Add(2*time.Minute - time.Second))
	sw := w.sweeper(c, app.SweeperConfig{})

	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("before the timeout: %+v, want nothing fired", res)
	}

	first := entered.Add(2*time.Minute + time.Second)
	c.Set(first)
	if res := mustRunOnce(t, sw); res != (app.SweepResult{DestroyRetried: 1}) {
		t.Fatalf("after the timeout: %+v, want one destroy retried", res)
	}
	got := w.status(s.ID)
	if got.Status != sessions.Destroying || !got.UpdatedAt.Equal(first) {
		t.Fatalf("session = %s updated_at %s, want still destroying, its timer restarted at %s", got.Status, got.UpdatedAt, first)
	}
	evs := w.outbox(v)
	if len(evs) != 1 || evs[0].Subject != events.TypeSessionDestroy {
		t.Fatalf("events = %+v, want one session.destroy", evs)
	}
	if d := decode[events.SessionDestroy](t, evs[0].Event); d != (events.SessionDestroy{SessionID: s.ID, Reason: domain.ReasonDestroyRetry}) {
		t.Errorf("session.destroy data = %+v", d)
	}
	if want := "destroy-retry-" + s.ID + "-"; !strings.HasPrefix(evs[0].Event.ID, want) {
		t.Errorf("event id %q, want it derived from the session (%s…)", evs[0].Event.ID, want)
	}

	// Not again within DestroyTimeout of the retry.
	for _, after := range []time.Duration{0, time.Minute, 2*time.Minute - time.Second} {
		c.Set(first.Add(after))
		if res := mustRunOnce(t, sw); res.Total() != 0 {
			t.Fatalf("%s after the retry: %+v, want nothing fired", after, res)
		}
	}

	c.Set(first.Add(2*time.Minute + time.Second))
	if res := mustRunOnce(t, sw); res != (app.SweepResult{DestroyRetried: 1}) {
		t.Fatalf("a timeout after the retry: %+v, want a second retry", res)
	}
	evs = w.outbox(v)
	if len(evs) != 2 || evs[1].Event.ID == evs[0].Event.ID {
		t.Fatalf("events = %d, ids %q; want a second session.destroy under a new id", len(evs), eventIDs(evs))
	}

	// Once the provisioner has finished, nothing more.
	w.move(s.ID, sessions.Destroying, sessions.Destroyed)
	c.Set(first.Add(time.Hour))
	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("after destroyed: %+v, want nothing fired", res)
	}
}

// The event id is the second line of defence: should the same session's
// retry be written twice in one DestroyTimeout-long slot (here by rewinding
// the timer the first retry restarted), the outbox keeps one event, so
// JetStream sees one message.
func TestDestroyRetryTwiceInOneTimeSlotIsOneEvent(t *testing.T) {
	w := newWorld(t)
	s := w.destroying()
	// The middle of a 2m slot (slots count from the Unix epoch), so both
	// passes below fall in it.
	const timeout = 2 * time.Minute
	slot := time.Unix(0, s.UpdatedAt.Add(time.Hour).UnixNano()/int64(timeout)*int64(timeout)).Add(timeout / 2)
	sw := w.sweeper(newClock(slot), app.SweeperConfig{DestroyTimeout: timeout})
	for i := range 2 {
		if res := mustRunOnce(t, sw); res.DestroyRetried != 1 {
			t.Fatalf("pass %d: %+v, want one retry", i, res)
		}
		if _, err := w.db.Exec(`UPDATE sessions SET updated_at = $2 WHERE id = $1`, s.ID, s.UpdatedAt); err != nil {
			t.Fatal(err)
		}
	}
	if evs := w.outbox(validator(t)); len(evs) != 1 {
		t.Fatalf("outbox holds %d events (ids %q), want one", len(evs), eventIDs(evs))
	}
}

// The sweeper's own staged → destroying starts the destroying timer on the
// sweeper's clock: the retry comes DestroyTimeout after the expiry, not in
// the same pass.
func TestExpiredStagedSessionIsRetriedOnlyAfterDestroyTimeout(t *testing.T) {
	w := newWorld(t)
	past := time.Now().Add(-time.Minute)
	s := w.staged(&past)
	expiredAt := time.Now().Add(time.Hour)
	c := newClock(expiredAt)
	sw := w.sweeper(c, app.SweeperConfig{})
	if res := mustRunOnce(t, sw); res != (app.SweepResult{StagedExpired: 1}) {
		t.Fatalf("%+v, want only the staged expiry", res)
	}
	c.Set(expiredAt.Add(2*time.Minute - time.Second))
	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("within the destroy timeout: %+v", res)
	}
	c.Set(expiredAt.Add(2*time.Minute + time.Second))
	if res := mustRunOnce(t, sw); res != (app.SweepResult{DestroyRetried: 1}) {
		t.Fatalf("after the destroy timeout: %+v, want one retry", res)
	}
	if got := w.status(s.ID).Status; got != sessions.Destroying {
		t.Fatalf("status %s", got)
	}
}

func TestAssigningAndDestroyingSessionsFireOnlyTheirOwnTimers(t *testing.T) {
	w := newWorld(t)
	past := time.Now().Add(-48 * time.Hour)
	assigning := w.staged(&past)
	w.move(assigning.ID, sessions.Staged, sessions.Assigning)
	destroying := w.staged(&past)
	w.move(destroying.ID, sessions.Staged, sessions.Destroying)

	sw := w.sweeper(newClock(time.Now().Add(72*time.Hour)), app.SweeperConfig{})
	if res := mustRunOnce(t, sw); res != (app.SweepResult{AssignTimedOut: 1, DestroyRetried: 1}) {
		t.Fatalf("%+v, want one assign timeout and one destroy retry, no staged expiry", res)
	}
	if got := w.status(assigning.ID).Status; got != sessions.Failed {
		t.Errorf("assigning session is %s, want failed", got)
	}
	if got := w.status(destroying.ID).Status; got != sessions.Destroying {
		t.Errorf("destroying session is %s, want destroying", got)
	}
}

// Replicas sweep concurrently; each stuck session fires exactly once
// between them: one failed + one expired per stuck assignment, one destroy
// per stuck destroy.
func TestRacingSweepersFireStuckAssigningAndDestroyingOnce(t *testing.T) {
	w := newWorld(t)
	v := validator(t)
	const perKind = 20
	stuckAssigning := map[string]bool{}
	stuckDestroying := map[string]bool{}
	for i := range perKind {
		stuckAssigning[w.claimed(fmt.Sprintf("req-stuck-%d", i)).ID] = true
		stuckDestroying[w.destroying().ID] = true
	}

	c := newClock(time.Now().Add(time.Hour))
	const replicas = 3
	sweepers := make([]*app.Sweeper, replicas)
	for i := range sweepers {
		sweepers[i] = w.sweeper(c, app.SweeperConfig{BatchSize: 3})
	}
	var total app.SweepResult
	for i, r := range race(sweepers) {
		if r.err != nil {
			t.Fatalf("sweeper %d: %v", i, r.err)
		}
		total = total.Add(r.res)
	}
	if total != (app.SweepResult{AssignTimedOut: perKind, DestroyRetried: perKind}) {
		t.Fatalf("sweepers fired %+v between them, want %d of each", total, perKind)
	}

	counts := eventsBySession(t, w.outbox(v))
	for id := range stuckAssigning {
		if c := counts[id]; c[events.TypeSessionFailed] != 1 || c[events.TypeSessionExpired] != 1 || len(c) != 2 {
			t.Errorf("stuck assigning session %s: events %v, want one failed and one expired", id, c)
		}
		if got := w.status(id).Status; got != sessions.Failed {
			t.Errorf("stuck assigning session %s is %s, want failed", id, got)
		}
	}
	for id := range stuckDestroying {
		if c := counts[id]; c[events.TypeSessionDestroy] != 1 || len(c) != 1 {
			t.Errorf("stuck destroying session %s: events %v, want one destroy", id, c)
		}
	}
	if len(counts) != 2*perKind {
		t.Errorf("events name %d sessions, want %d", len(counts), 2*perKind)
	}
	for i, sw := range sweepers {
		if res := mustRunOnce(t, sw); res.Total() != 0 {
			t.Errorf("sweeper %d fired again: %+v", i, res)
		}
	}
}

type raceResult struct {
	res app.SweepResult
	err error
}

// race runs one pass of every sweeper at the same moment.
func race(sweepers []*app.Sweeper) []raceResult {
	out := make([]raceResult, len(sweepers))
	var ready, wg sync.WaitGroup
	ready.Add(len(sweepers))
	start := make(chan struct{})
	for i, sw := range sweepers {
		wg.Go(func() {
			ready.Done()
			<-start
			out[i].res, out[i].err = sw.RunOnce(context.Background())
		})
	}
	ready.Wait()
	close(start)
	wg.Wait()
	return out
}

// eventsBySession counts events by session_id and type.
func eventsBySession(t *testing.T, evs []outboxEvent) map[string]map[string]int {
	t.Helper()
	counts := map[string]map[string]int{}
	for _, ev := range evs {
		var d struct {
			SessionID string `json:"session_id"`
		}
		if err := json.Unmarshal(ev.Event.Data, &d); err != nil {
			t.Fatal(err)
		}
		if counts[d.SessionID] == nil {
			counts[d.SessionID] = map[string]int{}
		}
		counts[d.SessionID][ev.Event.Type]++
	}
	return counts
}

func eventIDs(evs []outboxEvent) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.Event.ID
	}
	return ids
}
