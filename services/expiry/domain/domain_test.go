package domain_test

import (
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"

	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

func TestTimerCutoffIsItsTimeoutBeforeNowAndNowForADeadline(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		want    time.Time
	}{
		{"deadline (staged expiration, time limit, keepalive)", 0, now},
		{"provisioning timeout", 2 * time.Minute, now.Add(-2 * time.Minute)},
		{"assign timeout of 30s", 30 * time.Second, now.Add(-30 * time.Second)},
		{"destroy timeout of an hour", time.Hour, now.Add(-time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := domain.Cutoff(now, tc.timeout); !got.Equal(tc.want) {
				t.Errorf("Cutoff(now, %s) = %v, want %v", tc.timeout, got, tc.want)
			}
		})
	}
}

func TestDestroyRetryEventIDIsOnePerSessionAndTimeSlot(t *testing.T) {
	const timeout = 2 * time.Minute
	slot := time.Unix(0, 0).Add(1000 * timeout) // the start of a slot
	for _, tc := range []struct {
		name     string
		a, b     string
		atA, atB time.Time
		same     bool
	}{
		{"same session, same instant", "s1", "s1", slot, slot, true},
		{"same session, start and end of one slot", "s1", "s1", slot, slot.Add(timeout - time.Nanosecond), true},
		{"same session, next slot", "s1", "s1", slot, slot.Add(timeout), false},
		{"same session, previous slot", "s1", "s1", slot, slot.Add(-time.Nanosecond), false},
		{"two sessions, one slot", "s1", "s2", slot, slot, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := domain.DestroyRetryEventID(tc.a, tc.atA, timeout)
			b := domain.DestroyRetryEventID(tc.b, tc.atB, timeout)
			if (a == b) != tc.same {
				t.Errorf("ids %q and %q: same = %v, want %v", a, b, a == b, tc.same)
			}
		})
	}
}

func TestKeepaliveCountsFromItsTimeButNeverLaterThanNow(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		sentAt time.Time
		want   time.Time
	}{
		{"sent before now", now.Add(-time.Minute), now.Add(-time.Minute)},
		{"sent now", now, now},
		{"sender's clock ahead", now.Add(30 * time.Minute), now},
		{"no time", time.Time{}, now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := domain.KeepaliveFrom(tc.sentAt, now); !got.Equal(tc.want) {
				t.Errorf("KeepaliveFrom(%v, now) = %v, want %v", tc.sentAt, got, tc.want)
			}
		})
	}
}

// Every reason the expiry service gives a session's end says, on the
// session.destroyed that follows, why the session ended: none is "other".
func TestEveryReasonTheTimersGiveHasTheCauseOfItsTimer(t *testing.T) {
	for reason, cause := range map[string]string{
		domain.ReasonStagedExpired:       events.CauseExpired,
		domain.ReasonTimeLimit:           events.CauseTimeLimit,
		domain.ReasonKeepalive:           events.CauseKeepalive,
		domain.ReasonProvisioningTimeout: events.CauseProvisioningTimeout,
		domain.ReasonAssignTimeout:       events.CauseAssignTimeout,
		domain.ReasonDestroyRetry:        events.CauseDeleted,
	} {
		if got := events.DestroyCause(reason); got != cause {
			t.Errorf("DestroyCause(%q) = %q, want %q", reason, got, cause)
		}
	}
	// The two timers that fail a session first (its container removed
	// after) keep their own cause on the failed session's session.destroyed.
	for _, reason := range []string{domain.ReasonProvisioningTimeout, domain.ReasonAssignTimeout} {
		if got := events.DestroyCauseOfFailed(reason); got != events.DestroyCause(reason) {
			t.Errorf("DestroyCauseOfFailed(%q) = %q, want %q", reason, got, events.DestroyCause(reason))
		}
	}
}
