package staging

import "github.com/greenroom-dev/greenroom/libs/testsignal"

// ReconcilerTestSignals fire when the Reconciler's loop finishes a pass.
type ReconcilerTestSignals struct {
	// PassDone receives each pass's result.
	PassDone testsignal.Signal[ReconcileResult]
}

// Init enables the signals; without it they cost nothing.
func (ts *ReconcilerTestSignals) Init() { ts.PassDone.Init() }
