// Package testsignal lets the provisioner's background services (the
// staging pool reconciler, the container auditor) tell tests that a pass
// finished, so tests wait for an event with a deadline instead of
// sleeping.
package testsignal

import "time"

// Signal is one kind of event a test may wait for. Its zero value is
// disabled and costs nothing; Init enables it.
type Signal[T any] struct {
	ch chan T
}

// Init enables the signal.
func (s *Signal[T]) Init() { s.ch = make(chan T, 1000) }

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
	select {
	case v := <-s.ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("test signal not received within %s", timeout)
		var zero T
		return zero
	}
}

// TestingTB is the part of testing.TB a Signal uses; taking it as an
// interface keeps package testing out of the service binary.
type TestingTB interface {
	Helper()
	Fatalf(format string, args ...any)
}
