package service_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
)

// running inserts an on-demand session of alice for requestID with the
// limits the assigner copied from her group, and starts it: libs/sessions
// stamps time_limit_at, keepalive_at and expires_at.
func (w *world) running(requestID string, limits sessions.Limits) sessions.Session {
	w.t.Helper()
	s, err := sessions.Insert(context.Background(), w.db, sessions.New{
		ID: uuid.NewString(), RequestID: requestID, WorkspaceID: w.workspaceID, ZoneID: w.zoneID,
		UserID: w.userID, Origin: sessions.OriginOnDemand, Cores: 0.25, MemoryMB: 128,
		OnDemandReason: events.OnDemandNoStagingConfig, Limits: limits,
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return w.move(s.ID, sessions.Provisioning, sessions.Running)
}

// expiredEvent checks that the outbox holds exactly one event, a
// schema-valid session.expired for s with reason, and returns it.
func (w *world) expiredEvent(s sessions.Session, reason string) {
	w.t.Helper()
	evs := w.outbox(validator(w.t))
	if len(evs) != 1 || evs[0].Subject != events.TypeSessionExpired || evs[0].RequestID != s.RequestID.String {
		w.t.Fatalf("outbox %+v, want one session.expired for request %s", evs, s.RequestID.String)
	}
	if e := decode[events.SessionExpired](w.t, evs[0].Event); e != (events.SessionExpired{
		SessionID: s.ID, RequestID: s.RequestID.String, Reason: reason,
	}) {
		w.t.Errorf("session.expired data = %+v, want reason %s", e, reason)
	}
}

// Issue 10, point 3: a running session ends at its group's
// session_time_limit, with reason time_limit, even when its keepalive
// deadline is later or has also passed.
func TestRunningSessionPastItsTimeLimitEnds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits sessions.Limits
	}{
		{"time limit only", sessions.Limits{TimeLimit: time.Hour}},
		{"keepalive later than the time limit", sessions.Limits{TimeLimit: time.Hour, KeepaliveExpiration: 2 * time.Hour}},
		{"both passed, the time limit first", sessions.Limits{TimeLimit: time.Hour, KeepaliveExpiration: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			s := w.running("req-limit", tc.limits)
			if !s.TimeLimitAt.Valid || !s.ExpiresAt.Valid || !s.ExpiresAt.Time.Equal(s.TimeLimitAt.Time) {
				t.Fatalf("running session: time_limit_at %v expires_at %v, want expires_at at the time limit", s.TimeLimitAt, s.ExpiresAt)
			}
			c := newClock(s.TimeLimitAt.Time.Add(-time.Second))
			sw := w.sweeper(c, app.SweeperConfig{})
			if res := mustRunOnce(t, sw); res.Total() != 0 || w.status(s.ID).Status != sessions.Running {
				t.Fatalf("a second before the time limit: %+v, want nothing fired", res)
			}

			c.Set(s.TimeLimitAt.Time.Add(time.Second))
			if res := mustRunOnce(t, sw); res != (app.SweepResult{TimeLimitReached: 1}) {
				t.Fatalf("past the time limit: %+v, want one time limit reached", res)
			}
			if got := w.status(s.ID); got.Status != sessions.Destroying {
				t.Fatalf("status %s, want destroying (the provisioner removes the container)", got.Status)
			}
			w.expiredEvent(s, events.ExpiredTimeLimit)
			if res := mustRunOnce(t, sw); res.Total() != 0 {
				t.Errorf("second pass fired again: %+v", res)
			}
		})
	}
}

// Issue 10, point 3: a running session with a keepalive_expiration and no
// keepalive ends at keepalive_at, with reason keepalive.
func TestRunningSessionWithoutKeepaliveEnds(t *testing.T) {
	w := newWorld(t)
	s := w.running("req-idle", sessions.Limits{KeepaliveExpiration: 10 * time.Minute})
	if s.TimeLimitAt.Valid || !s.KeepaliveAt.Valid || !s.ExpiresAt.Time.Equal(s.KeepaliveAt.Time) ||
		s.KeepaliveAt.Time.Sub(s.RunningAt.Time) != 10*time.Minute {
		t.Fatalf("running session: time_limit_at %v keepalive_at %v expires_at %v running_at %v",
			s.TimeLimitAt, s.KeepaliveAt, s.ExpiresAt, s.RunningAt)
	}
	c := newClock(s.KeepaliveAt.Time.Add(-time.Second))
	sw := w.sweeper(c, app.SweeperConfig{})
	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("before the keepalive deadline: %+v, want nothing fired", res)
	}
	c.Set(s.KeepaliveAt.Time)
	if res := mustRunOnce(t, sw); res != (app.SweepResult{KeepaliveMissed: 1}) {
		t.Fatalf("at the keepalive deadline: %+v, want one keepalive missed", res)
	}
	if got := w.status(s.ID).Status; got != sessions.Destroying {
		t.Fatalf("status %s, want destroying", got)
	}
	w.expiredEvent(s, events.ExpiredKeepalive)
}

// Unset limits are no limit: a running session without them runs until
// someone ends it.
func TestRunningSessionWithoutLimitsNeverEnds(t *testing.T) {
	w := newWorld(t)
	s := w.running("req-forever", sessions.Limits{})
	if s.ExpiresAt.Valid || s.TimeLimitAt.Valid || s.KeepaliveAt.Valid {
		t.Fatalf("a session without limits has deadlines: %v %v %v", s.ExpiresAt, s.TimeLimitAt, s.KeepaliveAt)
	}
	sw := w.sweeper(newClock(time.Now().AddDate(100, 0, 0)), app.SweeperConfig{})
	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("%+v, want nothing fired", res)
	}
	if got := w.status(s.ID).Status; got != sessions.Running {
		t.Fatalf("status %s, want running", got)
	}
	if evs := w.outbox(validator(t)); len(evs) != 0 {
		t.Fatalf("%d events, want none", len(evs))
	}
}

// Replicas sweep concurrently; each running session past a deadline is
// ended by exactly one of them, with one session.expired.
func TestRacingSweepersEndEachRunningSessionOnce(t *testing.T) {
	w := newWorld(t)
	const perKind = 20
	reason := map[string]string{}
	for i := range perKind {
		s := w.running(fmt.Sprintf("req-limit-%d", i), sessions.Limits{TimeLimit: time.Minute, KeepaliveExpiration: time.Hour})
		reason[s.ID] = events.ExpiredTimeLimit
		s = w.running(fmt.Sprintf("req-idle-%d", i), sessions.Limits{TimeLimit: 3 * time.Hour, KeepaliveExpiration: time.Minute})
		reason[s.ID] = events.ExpiredKeepalive
	}
	sweepers, results := w.raceSweepers(newClock(time.Now().Add(time.Hour)), 3, app.SweeperConfig{BatchSize: 3})
	var total app.SweepResult
	for _, r := range results {
		total = total.Add(r)
	}
	if total != (app.SweepResult{TimeLimitReached: perKind, KeepaliveMissed: perKind}) {
		t.Fatalf("sweepers fired %+v between them (each: %+v), want %d of each", total, results, perKind)
	}
	seen := map[string]int{}
	for _, ev := range w.outbox(validator(t)) {
		e := decode[events.SessionExpired](t, ev.Event)
		seen[e.SessionID]++
		if want := reason[e.SessionID]; ev.Event.Type != events.TypeSessionExpired || e.Reason != want {
			t.Errorf("session %s: %s reason %q, want session.expired reason %q", e.SessionID, ev.Event.Type, e.Reason, want)
		}
	}
	for id := range reason {
		if seen[id] != 1 {
			t.Errorf("session %s: %d session.expired, want 1", id, seen[id])
		}
		if got := w.status(id).Status; got != sessions.Destroying {
			t.Errorf("session %s is %s, want destroying", id, got)
		}
	}
	if len(seen) != len(reason) {
		t.Errorf("events name %d sessions, want %d", len(seen), len(reason))
	}
	for i, sw := range sweepers {
		if res := mustRunOnce(t, sw); res.Total() != 0 {
			t.Errorf("sweeper %d fired again: %+v", i, res)
		}
	}
}
