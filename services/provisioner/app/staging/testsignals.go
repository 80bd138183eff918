package staging

import "time"

// ReconcilerTestSignals fire when the Reconciler's loop finishes a pass.
type ReconcilerTestSignals struct {
	// PassDone receives each pass's result.
	PassDone TestSignal[ReconcileResult]
}

// Init enables the signals; without it they cost nothing.
func (ts *ReconcilerTestSignals) Init() { ts.PassDone.init() }

// TestSignal is one kind of event a test may wait for.
type TestSignal[T any] struct {
	ch chan T
}

func (s *TestSignal[T]) init() { s.ch = make(chan T, 1000) }

// signal records v without ever blocking the service.
func (s *TestSignal[T]) signal(v T) {
	if s.ch == nil {
		return
	}
	select {
	case s.ch <- v:
	default:
	}
}

// WaitOrTimeout returns the next value, failing t after timeout.
func (s *TestSignal[T]) WaitOrTimeout(t TestingTB, timeout time.Duration) T {
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

// TestingTB is the part of testing.TB a TestSignal uses; taking it as an
// interface keeps package testing out of the service binary.
type TestingTB interface {
	Helper()
	Fatalf(format string, args ...any)
}
