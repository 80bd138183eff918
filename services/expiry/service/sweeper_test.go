package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
)

func TestSessionStuckInProvisioningFailsAfterTimeout(t *testing.T) {
	w := newWorld(t)
	v := validator(t)
	s := w.onDemand("req-stuck")
	c := newClock(s.CreatedAt.Add(2*time.Minute - time.Second))
	sw := w.sweeper(c, app.SweeperConfig{ProvisioningTimeout: 2 * time.Minute})

	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("before the timeout: %+v, want nothing fired", res)
	}
	if got := w.status(s.ID).Status; got != sessions.Provisioning {
		t.Fatalf("before the timeout: status %s, want provisioning", got)
	}

	c.Set(s.CreatedAt.Add(2*time.Minute + time.Second))
	if res := mustRunOnce(t, sw); res != (app.SweepResult{ProvisioningTimedOut: 1}) {
		t.Fatalf("after the timeout: %+v, want one provisioning timeout", res)
	}
	got := w.status(s.ID)
	if got.Status != sessions.Failed || got.FailureReason != "provisioning_timeout: provisioning timed out after 2m0s" || !got.DestroyedAt.Valid {
		t.Fatalf("session = %s %q destroyed_at=%v, want failed with the timeout as reason", got.Status, got.FailureReason, got.DestroyedAt)
	}

	evs := w.outbox(v)
	if len(evs) != 2 {
		t.Fatalf("outbox holds %d events, want session.failed and session.expired", len(evs))
	}
	failed, expired := evs[0], evs[1]
	if failed.Subject != events.TypeSessionFailed || failed.RequestID != "req-stuck" {
		t.Errorf("first event on %s with request header %q, want session.failed for req-stuck", failed.Subject, failed.RequestID)
	}
	f := decode[events.SessionFailed](t, failed.Event)
	if f.RequestID != "req-stuck" || f.SessionID != s.ID || f.Reason != events.ReasonProvisioningTimeout ||
		!strings.Contains(f.Detail, "provisioning timed out after 2m0s") {
		t.Errorf("session.failed data = %+v", f)
	}
	if expired.Subject != events.TypeSessionExpired || expired.RequestID != "req-stuck" {
		t.Errorf("second event on %s with request header %q, want session.expired for req-stuck", expired.Subject, expired.RequestID)
	}
	if e := decode[events.SessionExpired](t, expired.Event); e != (events.SessionExpired{
		SessionID: s.ID, RequestID: "req-stuck", Reason: events.ExpiredProvisioning,
	}) {
		t.Errorf("session.expired data = %+v", e)
	}
	if failed.Event.Source != app.SourceDefault {
		t.Errorf("source = %q", failed.Event.Source)
	}

	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Errorf("second pass fired again: %+v", res)
	}
}

func TestStagingSessionStuckInProvisioningCarriesItsStagingConfig(t *testing.T) {
	w := newWorld(t)
	s := w.provisioningStaged()
	sw := w.sweeper(newClock(s.CreatedAt.Add(time.Hour)), app.SweeperConfig{})
	if res := mustRunOnce(t, sw); res.ProvisioningTimedOut != 1 {
		t.Fatalf("%+v, want one provisioning timeout", res)
	}
	evs := w.outbox(validator(t))
	if len(evs) != 2 {
		t.Fatalf("outbox holds %d events, want 2", len(evs))
	}
	if f := decode[events.SessionFailed](t, evs[0].Event); f.RequestID != "" || f.SessionID != s.ID || evs[0].RequestID != "" {
		t.Errorf("session.failed of a staged session = %+v (header %q), want no request_id", f, evs[0].RequestID)
	}
	if e := decode[events.SessionExpired](t, evs[1].Event); e.StagingConfigID != w.stagingConfigID || e.Reason != events.ExpiredProvisioning {
		t.Errorf("session.expired = %+v, want staging config %s", e, w.stagingConfigID)
	}
}

// Rule 2: a staged session unassigned for expiration_hours is destroyed (and
// the provisioner re-creates it on the expired event).
func TestStagedSessionUnassignedForExpirationHoursIsExpired(t *testing.T) {
	ptr := func(d time.Duration) *time.Duration { return &d }
	for _, tc := range []struct {
		name            string
		expiresAfter    *time.Duration // expires_at - staged_at; nil leaves expires_at NULL
		expirationHours float64        // the staging config's, changed after staging
		clockAfter      time.Duration  // sweeper clock - staged_at
		wantExpired     bool
	}{
		{"before expires_at", ptr(time.Hour), 1, 59 * time.Minute, false},
		{"at expires_at", ptr(time.Hour), 1, time.Hour, true},
		{"after expires_at", ptr(time.Hour), 1, 61 * time.Minute, true},
		{"expires_at unset, config's hours not yet passed", nil, 1, 59 * time.Minute, false},
		{"expires_at unset, config's hours passed", nil, 1, 61 * time.Minute, true},
		{"expiration lowered after staging", ptr(24 * time.Hour), 0.5, 31 * time.Minute, true},
		{"expiration raised after staging keeps expires_at", ptr(time.Hour), 24, 61 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			v := validator(t)
			var expiresAt *time.Time
			s := w.staged(nil)
			if tc.expiresAfter != nil {
				at := s.StagedAt.Time.Add(*tc.expiresAfter)
				expiresAt = &at
				if _, err := w.db.Exec(`UPDATE sessions SET expires_at = $2 WHERE id = $1`, s.ID, at); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := w.db.Exec(`UPDATE staging_configs SET expiration_hours = $2 WHERE id = $1`, w.stagingConfigID, tc.expirationHours); err != nil {
				t.Fatal(err)
			}
			sw := w.sweeper(newClock(s.StagedAt.Time.Add(tc.clockAfter)), app.SweeperConfig{})

			res := mustRunOnce(t, sw)
			got := w.status(s.ID).Status
			evs := w.outbox(v)
			if !tc.wantExpired {
				if res.Total() != 0 || got != sessions.Staged || len(evs) != 0 {
					t.Fatalf("expires_at=%v: %+v, status %s, %d events; want it still staged", expiresAt, res, got, len(evs))
				}
				return
			}
			if res != (app.SweepResult{StagedExpired: 1}) || got != sessions.Destroying {
				t.Fatalf("expires_at=%v: %+v, status %s; want one staged expiry, destroying", expiresAt, res, got)
			}
			if len(evs) != 1 || evs[0].Subject != events.TypeSessionExpired || evs[0].RequestID != "" {
				t.Fatalf("events = %+v, want one session.expired without a request", evs)
			}
			if e := decode[events.SessionExpired](t, evs[0].Event); e != (events.SessionExpired{
				SessionID: s.ID, StagingConfigID: w.stagingConfigID, Reason: events.ExpiredStaged,
			}) {
				t.Errorf("session.expired data = %+v", e)
			}
		})
	}
}

// Destroyed and failed sessions have no timer, nor does a running one
// without limits, whatever expires_at it had while staged (its own timers
// are in running_expiry_test.go); assigning and destroying ones have their
// own (stuck_sessions_test.go), which their past expires_at does not
// trigger.
func TestSessionsPastTheirTimersInOtherStatusesAreLeftAlone(t *testing.T) {
	w := newWorld(t)
	past := time.Now().Add(-48 * time.Hour)
	running := w.staged(&past)
	w.move(running.ID, sessions.Staged, sessions.Assigning, sessions.Running)
	destroyed := w.staged(&past)
	w.move(destroyed.ID, sessions.Staged, sessions.Destroying, sessions.Destroyed)
	onDemand := w.onDemand("req-running")
	w.move(onDemand.ID, sessions.Provisioning, sessions.Running)
	failed := w.onDemand("req-failed")
	w.move(failed.ID, sessions.Provisioning, sessions.Failed)

	sw := w.sweeper(newClock(time.Now().Add(72*time.Hour)), app.SweeperConfig{})
	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("%+v, want nothing fired", res)
	}
	if evs := w.outbox(validator(t)); len(evs) != 0 {
		t.Fatalf("%d events emitted, want none", len(evs))
	}
}

// A staged session the assigner is claiming at this very moment holds a row
// lock: the sweeper skips it instead of expiring it under the claim, and once
// the claim commits the session is no longer staged.
func TestStagedSessionBeingClaimedIsNotExpired(t *testing.T) {
	w := newWorld(t)
	past := time.Now().Add(-time.Minute)
	s := w.staged(&past)
	sw := w.sweeper(newClock(time.Now()), app.SweeperConfig{})

	ctx := context.Background()
	claim, err := w.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = claim.Rollback() }()
	claimed, err := sessions.ClaimStaged(ctx, claim, w.stagingConfigID, w.userID, "req-claim", events.Permissions{})
	if err != nil || claimed.ID != s.ID {
		t.Fatalf("ClaimStaged = %s, %v", claimed.ID, err)
	}

	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("while claimed: %+v, want the locked session skipped", res)
	}
	if err := claim.Commit(); err != nil {
		t.Fatal(err)
	}
	if res := mustRunOnce(t, sw); res.Total() != 0 {
		t.Fatalf("after the claim: %+v, want nothing to expire", res)
	}
	if got := w.status(s.ID).Status; got != sessions.Assigning {
		t.Fatalf("status %s, want assigning", got)
	}
}

// Replicas sweep concurrently; FOR UPDATE SKIP LOCKED must make each session
// fire exactly once between them.
func TestRacingSweepersFireEachSessionOnce(t *testing.T) {
	w := newWorld(t)
	v := validator(t)
	const perKind = 25
	past := time.Now().Add(-time.Minute)
	stuck := map[string]bool{}
	stale := map[string]bool{}
	for i := range perKind {
		stuck[w.onDemand(fmt.Sprintf("req-race-%d", i)).ID] = true
		stale[w.staged(&past).ID] = true
	}

	sweepers, results := w.raceSweepers(newClock(time.Now().Add(time.Hour)), 3, app.SweeperConfig{BatchSize: 4})
	var total app.SweepResult
	for _, r := range results {
		total.ProvisioningTimedOut += r.ProvisioningTimedOut
		total.StagedExpired += r.StagedExpired
	}
	if total != (app.SweepResult{ProvisioningTimedOut: perKind, StagedExpired: perKind}) {
		t.Fatalf("sweepers fired %+v between them (each: %+v), want %d of each", total, results, perKind)
	}

	counts := map[string]map[string]int{} // session → event type → count
	for _, ev := range w.outbox(v) {
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
	for id := range stuck {
		if c := counts[id]; c[events.TypeSessionFailed] != 1 || c[events.TypeSessionExpired] != 1 || len(c) != 2 {
			t.Errorf("stuck session %s: events %v, want one failed and one expired", id, c)
		}
	}
	for id := range stale {
		if c := counts[id]; c[events.TypeSessionExpired] != 1 || len(c) != 1 {
			t.Errorf("staged session %s: events %v, want one expired", id, c)
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
