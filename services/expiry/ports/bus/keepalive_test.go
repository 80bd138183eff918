package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap/zaptest"

	libbus "github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/ports/bus"
)

// keepaliveStore is app.Keepalives in memory: it fails with err and
// counts its writes.
type keepaliveStore struct {
	err    error
	writes int
}

func (s *keepaliveStore) Keepalive(context.Context, string, time.Time) (sessions.Session, error) {
	s.writes++
	return sessions.Session{}, s.err
}

// A keepalive that cannot be decoded or names no valid session id is
// dead-lettered at once without touching a session; one for an unknown
// session is acknowledged; a failed write is returned for a retry.
func TestKeepaliveAckRetryOrDeadLetter(t *testing.T) {
	broken := errors.New("connection reset")
	for _, tc := range []struct {
		name          string
		data          any // nil sends data that is not an object
		writeErr      error
		wantPermanent bool
		wantErrIs     error
		wantWrites    int
	}{
		{"data not decodable", nil, nil, true, nil, 0},
		{"session id not a uuid", events.SessionKeepalive{SessionID: "not-a-uuid"}, nil, true, nil, 0},
		{"unknown session", events.SessionKeepalive{SessionID: uuid.NewString()}, sessions.ErrNotFound, false, nil, 1},
		{"write failed", events.SessionKeepalive{SessionID: uuid.NewString()}, broken, false, broken, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &keepaliveStore{err: tc.writeErr}
			k, err := bus.NewKeepaliveConsumer(nil, nil, app.ExtendSession{Sessions: store}, bus.KeepaliveConfig{}, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ev := events.Event{Type: events.TypeSessionKeepalive, Time: time.Now(), Data: []byte(`"garbage"`)}
			if tc.data != nil {
				if ev, err = events.New("greenroom/test", events.TypeSessionKeepalive, tc.data); err != nil {
					t.Fatal(err)
				}
			}

			err = k.Handle(context.Background(), libbus.Message{Event: ev, Subject: events.TypeSessionKeepalive})
			switch {
			case tc.wantPermanent && !libbus.IsPermanent(err):
				t.Errorf("Handle = %v, want a permanent error (dead-lettered)", err)
			case tc.wantErrIs != nil && (!errors.Is(err, tc.wantErrIs) || libbus.IsPermanent(err)):
				t.Errorf("Handle = %v, want %v, retried", err, tc.wantErrIs)
			case !tc.wantPermanent && tc.wantErrIs == nil && err != nil:
				t.Errorf("Handle = %v, want the keepalive acknowledged", err)
			}
			if store.writes != tc.wantWrites {
				t.Errorf("%d keepalive writes, want %d", store.writes, tc.wantWrites)
			}
		})
	}
}
