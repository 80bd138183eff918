package app_test

import (
	"context"
	"sync"
	"time"

	"github.com/greenroom-dev/greenroom/libs/sessions"
	"github.com/greenroom-dev/greenroom/services/expiry/app"
	"github.com/greenroom-dev/greenroom/services/expiry/domain"
)

// batch is what one call of a fake timer returns.
type batch struct {
	changed int
	full    bool
	err     error
}

// timerCall is one call of a fake timer: which timer (by the reason it
// fires with), with what.
type timerCall struct {
	timer string
	p     app.TimerParams
}

// fakeTimers is app.SessionTimers in memory: each timer returns the
// batches queued for it, in order, then empty ones; every call is
// recorded. onCall, when set, runs after each call is recorded.
type fakeTimers struct {
	mu      sync.Mutex
	batches map[string][]batch
	calls   []timerCall
	onCall  func(timerCall)
}

var _ app.SessionTimers = (*fakeTimers)(nil)

func newFakeTimers(batches map[string][]batch) *fakeTimers {
	if batches == nil {
		batches = map[string][]batch{}
	}
	return &fakeTimers{batches: batches}
}

func (f *fakeTimers) fire(timer string, p app.TimerParams) (int, bool, error) {
	f.mu.Lock()
	c := timerCall{timer, p}
	f.calls = append(f.calls, c)
	var b batch
	if q := f.batches[timer]; len(q) > 0 {
		b, f.batches[timer] = q[0], q[1:]
	}
	onCall := f.onCall
	f.mu.Unlock()
	if onCall != nil {
		onCall(c)
	}
	return b.changed, b.full, b.err
}

// callsOf counts the calls of one timer.
func (f *fakeTimers) callsOf(timer string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.timer == timer {
			n++
		}
	}
	return n
}

func (f *fakeTimers) FailStuckProvisioning(_ context.Context, p app.TimerParams) (int, bool, error) {
	return f.fire(domain.ReasonProvisioningTimeout, p)
}

func (f *fakeTimers) ExpireStagedSessions(_ context.Context, p app.TimerParams) (int, bool, error) {
	return f.fire(domain.ReasonStagedExpired, p)
}

func (f *fakeTimers) FailStuckAssigning(_ context.Context, p app.TimerParams) (int, bool, error) {
	return f.fire(domain.ReasonAssignTimeout, p)
}

func (f *fakeTimers) EndSessionsPastTimeLimit(_ context.Context, p app.TimerParams) (int, bool, error) {
	return f.fire(domain.ReasonTimeLimit, p)
}

func (f *fakeTimers) EndSessionsPastKeepalive(_ context.Context, p app.TimerParams) (int, bool, error) {
	return f.fire(domain.ReasonKeepalive, p)
}

func (f *fakeTimers) RetryStuckDestroying(_ context.Context, p app.TimerParams) (int, bool, error) {
	return f.fire(domain.ReasonDestroyRetry, p)
}

// fakeKeepalives is app.Keepalives in memory: it returns what it is set
// to and records the time each keepalive was written with.
type fakeKeepalives struct {
	session sessions.Session
	err     error
	at      []time.Time
}

var _ app.Keepalives = (*fakeKeepalives)(nil)

func (f *fakeKeepalives) Keepalive(_ context.Context, _ string, at time.Time) (sessions.Session, error) {
	f.at = append(f.at, at)
	return f.session, f.err
}
