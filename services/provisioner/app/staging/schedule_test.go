package staging_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
)

// shiftedClock runs with the real clock from a time a test sets, so that
// a schedule's start or end comes in seconds instead of at its minute.
type shiftedClock struct{ offset atomic.Int64 }

// set makes the clock read at now.
func (c *shiftedClock) set(at time.Time) { c.offset.Store(int64(time.Until(at))) }

func (c *shiftedClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// tomorrowAt is tomorrow's hour:00 in zone name.
func tomorrowAt(t *testing.T, name string, hour int) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Now().In(loc).AddDate(0, 0, 1)
	return time.Date(d.Year(), d.Month(), d.Day(), hour, 0, 0, 0, loc)
}

// TestScheduleRunResizesThePoolAtItsStartAndEnd: a run of the pool's
// schedule raises it to the run's desired sessions when it starts and
// lowers it back when it ends, each by a pass the reconciler timed itself
// (nothing triggers it, and the periodic pass is an hour away).
func TestScheduleRunResizesThePoolAtItsStartAndEnd(t *testing.T) {
	t.Parallel()
	p := newPool(t, 1)
	p.exec(t, `UPDATE staging_configs SET schedule = $2 WHERE id = $1`, p.config,
		`[{"cron":"0 13 * * *","timezone":"Europe/Berlin","duration":"10m","desired_sessions":3}]`)
	start := tomorrowAt(t, "Europe/Berlin", 13)
	var clock shiftedClock
	clock.set(start.Add(-2 * time.Second))
	r := newReconciler(p, staging.ReconcilerConfig{Interval: time.Hour, RefillConcurrency: 100, ScheduleClock: clock.now})
	r.TestSignals.Init()
	apptest.Start(t, r)

	if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 1 {
		t.Fatalf("first pass %+v, want 1 created: the run has not started", res)
	}
	if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 2 {
		t.Fatalf("pass at the run's start %+v, want 2 created", res)
	}
	if n := p.count(t); n != 3 {
		t.Fatalf("%d sessions during the run, want 3", n)
	}

	// Two seconds before the end: a pass (any) times the next one.
	clock.set(start.Add(10*time.Minute - 2*time.Second))
	r.Trigger(p.config)
	if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Created != 0 || res.Destroyed != 0 {
		t.Fatalf("pass before the run's end %+v, want nothing done", res)
	}
	if res := r.TestSignals.PassDone.WaitOrTimeout(t, 10*time.Second); res.Destroyed != 2 {
		t.Fatalf("pass at the run's end %+v, want 2 destroyed", res)
	}
	if st := p.statuses(t); len(st) != 3 {
		t.Errorf("sessions %v", st)
	}
}
