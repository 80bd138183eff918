package chaos

import "testing"

// TestOutcomeCount pins what counts as one outcome: a ready event, or a
// failure; the same event seen twice is one; a failure of a session after
// it was ready (its container died) is not a second outcome; two answers
// that disagree are two.
func TestOutcomeCount(t *testing.T) {
	x := newStreamIndex()
	o := x.outcome("r1")
	if o.count() != 0 {
		t.Fatalf("fresh outcome counts %d", o.count())
	}
	o.ready["s1"], o.readyIDs["e1"] = true, true
	o.readyIDs["e1"] = true // the same event redelivered
	if o.count() != 1 {
		t.Fatalf("one ready: %d", o.count())
	}
	o.failedOf["e2"], o.failed["container_gone"] = "s1", true
	if o.count() != 1 {
		t.Fatalf("ready, then its session failed: %d, want 1", o.count())
	}
	o.ready["s2"] = true
	if o.count() != 2 {
		t.Fatalf("ready for two sessions: %d, want 2", o.count())
	}
	f := x.outcome("r2")
	f.failedOf["e3"], f.failedOf["e4"] = "", ""
	if f.count() != 2 {
		t.Fatalf("two failures without a session (two answers): %d, want 2", f.count())
	}
	var nilOutcome *outcomeOf
	if nilOutcome.count() != 0 {
		t.Fatal("nil outcome")
	}
}
