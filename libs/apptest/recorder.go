package apptest

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Recorded is one message seen on greenroom.>.
type Recorded struct {
	Subject   string
	RequestID string
	Event     events.Event
	Raw       []byte
}

// Recorder records every message on greenroom.> and checks each against
// its schema: the end of the test fails if any published event is invalid.
type Recorder struct {
	t         testing.TB
	validator *events.Validator
	mu        sync.Mutex
	msgs      []Recorded
	invalid   []string
}

// NewRecorder subscribes to everything Greenroom publishes on nc.
func NewRecorder(t testing.TB, nc *nats.Conn) *Recorder {
	t.Helper()
	v, err := events.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	r := &Recorder{t: t, validator: v}
	sub, err := nc.Subscribe("greenroom.>", func(m *nats.Msg) {
		rec := Recorded{Subject: m.Subject, RequestID: m.Header.Get(events.HeaderRequestID), Raw: m.Data}
		ev, derr := events.Decode(m.Data)
		verr := r.validator.Validate(m.Data)
		r.mu.Lock()
		defer r.mu.Unlock()
		if derr == nil {
			rec.Event = ev
		}
		if verr != nil && !r.expectedInvalid(m) {
			r.invalid = append(r.invalid, m.Subject+": "+verr.Error())
		}
		r.msgs = append(r.msgs, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sub.Unsubscribe()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, msg := range r.invalid {
			t.Errorf("published event does not match its schema: %s", msg)
		}
	})
	return r
}

// HeaderTestGarbage marks a message a test published invalid on purpose.
const HeaderTestGarbage = "Greenroom-Test-Garbage"

func (r *Recorder) expectedInvalid(m *nats.Msg) bool { return m.Header.Get(HeaderTestGarbage) != "" }

// All returns what was recorded so far.
func (r *Recorder) All() []Recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Recorded(nil), r.msgs...)
}

// Find returns the recorded messages on subject about requestID (any
// request when empty).
func (r *Recorder) Find(subject, requestID string) []Recorded {
	var out []Recorded
	for _, m := range r.All() {
		if m.Subject == subject && (requestID == "" || m.RequestID == requestID) {
			out = append(out, m)
		}
	}
	return out
}

// Wait waits until a message on subject about requestID is recorded.
func (r *Recorder) Wait(t testing.TB, subject, requestID string, timeout time.Duration) Recorded {
	t.Helper()
	var got []Recorded
	Eventually(t, timeout, subject+" for "+requestID, func() bool {
		got = r.Find(subject, requestID)
		return len(got) > 0
	})
	return got[0]
}

// WaitAny waits until a message on any of subjects about requestID is
// recorded and returns the first.
func (r *Recorder) WaitAny(t testing.TB, requestID string, timeout time.Duration, subjects ...string) Recorded {
	t.Helper()
	var got Recorded
	Eventually(t, timeout, "an outcome for "+requestID, func() bool {
		for _, s := range subjects {
			if f := r.Find(s, requestID); len(f) > 0 {
				got = f[0]
				return true
			}
		}
		return false
	})
	return got
}
