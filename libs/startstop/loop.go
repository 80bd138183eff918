package startstop

import (
	"context"
	"time"
)

// LoopConfig describes a periodic background loop.
type LoopConfig struct {
	// Interval is the time between two passes when nothing asks for one
	// sooner; zero means no periodic pass (NextRun and Trigger only).
	Interval time.Duration
	// Pass does one pass. A loop never stops for a failed pass: Pass logs
	// and counts its own failure, and the next pass retries. It should
	// return soon after ctx is done.
	Pass func(ctx context.Context)
	// NextRun, when set, is asked after each pass when the next one is due
	// besides the interval (a held-back pool's retry, say); the zero time
	// means no such time.
	NextRun func() time.Time
	// Starting, when set, runs in the loop's goroutine before the first
	// pass (to open what the passes share, such as a LISTEN connection).
	Starting func(ctx context.Context)
	// Stopping, when set, runs once the last pass is over, before the loop
	// reports itself stopped (to wait for what the passes started).
	Stopping func()
}

// Loop is the skeleton of every periodic pass: one pass at once when
// started, then one per Interval, per Trigger (coalesced) and at NextRun,
// until stopped. The pass itself (a river maintenance service's runOnce) is
// what tests call directly; the loop's own behaviour is tested here once.
type Loop struct {
	BaseStartStop
	cfg  LoopConfig
	wake chan struct{}
}

// NewLoop returns a loop; Start runs it.
func NewLoop(cfg LoopConfig) *Loop {
	return &Loop{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Trigger asks for a pass soon. It never blocks; triggers made while a
// pass runs coalesce into one more pass.
func (l *Loop) Trigger() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Start runs the loop in the background.
func (l *Loop) Start(ctx context.Context) error {
	ctx, shouldStart, stopped := l.StartInit(ctx)
	if !shouldStart {
		return nil
	}
	go func() {
		defer stopped(nil)
		if l.cfg.Stopping != nil {
			defer l.cfg.Stopping()
		}
		if l.cfg.Starting != nil {
			l.cfg.Starting(ctx)
		}
		l.run(ctx)
	}()
	return nil
}

func (l *Loop) run(ctx context.Context) {
	var tick <-chan time.Time
	if l.cfg.Interval > 0 {
		t := time.NewTicker(l.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	for {
		// A tick or trigger ready together with the end of ctx may win the
		// select below: no pass runs once the loop is stopping.
		if ctx.Err() != nil {
			return
		}
		l.cfg.Pass(ctx)
		var dueC <-chan time.Time
		if l.cfg.NextRun != nil {
			if at := l.cfg.NextRun(); !at.IsZero() {
				due.Reset(time.Until(at))
				dueC = due.C
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-dueC:
		case <-l.wake:
		}
		due.Stop()
	}
}
