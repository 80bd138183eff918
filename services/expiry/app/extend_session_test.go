package app_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
)

// A keepalive extends a running session from its time, but never from
// later than the clock; one for a session that is not running or not
// there is an outcome, not an error (nothing to retry); a failed write is
// an error, so that the keepalive is retried.
func TestKeepaliveExtendsARunningSessionAndIgnoresOthers(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	running := sessions.Session{ID: "s1", Status: sessions.Running,
		ExpiresAt: sql.NullTime{Time: now.Add(10 * time.Minute), Valid: true}}
	broken := errors.New("connection reset")
	for _, tc := range []struct {
		name      string
		session   sessions.Session
		writeErr  error
		sentAt    time.Time
		want      app.KeepaliveOutcome
		wantAt    time.Time
		wantErrIs error
	}{
		{"running session, sent a minute ago", running, nil, now.Add(-time.Minute), app.KeepaliveExtended, now.Add(-time.Minute), nil},
		{"running session, sender's clock ahead", running, nil, now.Add(time.Hour), app.KeepaliveExtended, now, nil},
		{"session not running", sessions.Session{ID: "s1", Status: sessions.Provisioning}, sessions.ErrStale, now, app.KeepaliveNotRunning, now, nil},
		{"unknown session", sessions.Session{}, sessions.ErrNotFound, now, app.KeepaliveUnknownSession, now, nil},
		{"write failed", sessions.Session{}, broken, now, "", now, broken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &fakeKeepalives{session: tc.session, err: tc.writeErr}
			uc := app.ExtendSession{Sessions: store, Now: func() time.Time { return now }}

			res, err := uc.Handle(context.Background(), "s1", tc.sentAt)
			if tc.wantErrIs != nil {
				if !errors.Is(err, tc.wantErrIs) {
					t.Fatalf("error %v, want %v", err, tc.wantErrIs)
				}
			} else if err != nil {
				t.Fatalf("error %v, want outcome %s", err, tc.want)
			}
			if res.Outcome != tc.want || !res.At.Equal(tc.wantAt) {
				t.Errorf("result %s at %v, want %s at %v", res.Outcome, res.At, tc.want, tc.wantAt)
			}
			if len(store.at) != 1 || !store.at[0].Equal(tc.wantAt) {
				t.Errorf("keepalive written at %v, want once at %v", store.at, tc.wantAt)
			}
			if tc.want == app.KeepaliveNotRunning && res.Session.Status != sessions.Provisioning {
				t.Errorf("not-running result carries status %q, want the session's", res.Session.Status)
			}
		})
	}
}
