// Package testsignal is how every Greenroom service and background loop
// tells tests what it just did (a pass finished, a stream opened), so that
// tests wait for an event with a deadline instead of sleeping. It is
// river's rivertest signal idea: each loop has a TestSignals struct of
// Signal fields, zero (disabled, free) in production, enabled by the test
// with Init.
package testsignal

import "time"

// Signal is one kind of event a test may wait for. Its zero value is
// disabled and costs nothing; Init enables it.
type Signal[T any] struct {
	ch chan T
}

// signalBuffer is how many unread values an enabled signal keeps; more are
// dropped rather than ever blocking the service.
const signalBuffer = 1000

// Init enables the signal.
func (s *Signal[T]) Init() { s.ch = make(chan T, signalBuffer) }

// Signal records v without ever blocking the service.
func (s *Signal[T]) Signal(v T) {
	if s.ch == nil {
		return
	}
	select {
	case s.ch <- v:
	default:
	}
}

// WaitOrTimeout returns the next value, failing t after timeout.
func (s *Signal[T]) WaitOrTimeout(t TestingTB, timeout time.Duration) T {
	t.Helper()
	if s.ch == nil {
		t.Fatalf("test signal waited on but never enabled (call Init)")
	}
	select {
	case v := <-s.ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("test signal not received within %s", timeout)
		var zero T
		return zero
	}
}

// C is the channel of values, for a test that selects over several
// signals or drains one; nil (never ready) while disabled.
func (s *Signal[T]) C() <-chan T { return s.ch }

// TestingTB is the part of testing.TB a Signal uses; taking it as an
// interface keeps package testing out of the service binary.
type TestingTB interface {
	Helper()
	Fatalf(format string, args ...any)
}
