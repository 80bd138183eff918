package service_test

// Scheduled desired sessions against real Docker (issue 17): a run of a
// staging config's schedule fills the pool to the run's desired_sessions
// at its start and shrinks it back at its end, each at the minute.

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/staging"
	"github.com/greenroom-dev/greenroom/services/provisioner/service"
)

// scheduleClock runs with the real clock from a time a test sets: the
// reconciler reads schedules on it (staging.ReconcilerConfig.ScheduleClock),
// so a run starts or ends seconds after the test moves the clock near it.
type scheduleClock struct{ offset atomic.Int64 }

// set makes the clock read at now.
func (c *scheduleClock) set(at time.Time) { c.offset.Store(int64(time.Until(at))) }

func (c *scheduleClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func TestScheduledRunFillsThePoolAndShrinksItBackWhenItEnds(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().In(berlin).AddDate(0, 0, 1)
	start := time.Date(day.Year(), day.Month(), day.Day(), 13, 0, 0, 0, berlin)
	end := start.Add(10 * time.Minute)
	var clock scheduleClock
	clock.set(start.Add(-time.Hour))

	e := newEnv(t, envOptions{cfg: service.Config{Reconciler: staging.ReconcilerConfig{ScheduleClock: clock.now}}})
	f := e.standardFixture(workspaceOptions{initDelay: "0s"})
	cfg := e.addStagingConfig(f, 1, events.Permissions{})
	e.exec(`UPDATE staging_configs SET schedule = $2 WHERE id = $1`, cfg,
		`[{"cron":"0 13 * * *","timezone":"Europe/Berlin","duration":"10m","desired_sessions":3}]`)
	e.poolConfigChanged(cfg, "created")
	e.waitFor("1 staged session before the run", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 1 })
	e.waitFor("status ok before the run", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	e.waitIdle()

	// Two seconds before the run: any pass (this trigger's) times the
	// next one at the run's start; nothing else asks for one then.
	clock.set(start.Add(-2 * time.Second))
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("3 staged sessions during the run", 120*time.Second, func() bool { return len(e.poolStaged(cfg)) == 3 })
	e.waitFor("status ok during the run", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
	during := e.poolStaged(cfg) // oldest first
	e.waitIdle()

	clock.set(end.Add(-2 * time.Second))
	e.svc.Reconciler.Trigger(cfg)
	e.waitFor("1 container after the run", 60*time.Second, func() bool { return len(e.poolContainers(cfg)) == 1 })
	for _, s := range during[1:] {
		ev := e.waitEvent(events.TypeSessionDestroyed, 30*time.Second, dataIs("session_id", s.ID))
		if d := decode[events.SessionDestroyed](t, ev); d.Reason != "pool_shrink" {
			t.Errorf("session.destroyed after the run = %+v, want reason pool_shrink", d)
		}
	}
	if left := e.poolStaged(cfg); len(left) != 1 || left[0].ID != during[0].ID {
		t.Errorf("staged after the run: %v, want the oldest, %s", left, during[0].ID)
	}
	e.waitFor("status ok after the run", 60*time.Second, func() bool { return e.configStatus(cfg) == "ok" })
}
