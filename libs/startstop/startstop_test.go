package startstop_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/libs/testsignal"
)

// waitFor fails t unless c is closed within a generous bound: the bound
// only keeps a broken lifecycle from hanging the suite.
func waitFor(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
}

func TestLoopPassesAtStartOnTriggerAndAtNextRun(t *testing.T) {
	var passes testsignal.Signal[int]
	passes.Init()
	var n atomic.Int32
	loop := startstop.NewLoop(startstop.LoopConfig{
		Interval: time.Hour, // never ticks during the test
		Pass:     func(context.Context) { passes.Signal(int(n.Add(1))) },
		// After the second pass, and only then, the next one is due
		// shortly.
		NextRun: func() time.Time {
			if n.Load() == 2 {
				return time.Now().Add(time.Millisecond)
			}
			return time.Time{}
		},
	})
	if err := loop.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer loop.Stop()
	if got := passes.WaitOrTimeout(t, 10*time.Second); got != 1 {
		t.Fatalf("first pass is #%d, want the one at start", got)
	}
	loop.Trigger()
	if got := passes.WaitOrTimeout(t, 10*time.Second); got != 2 {
		t.Fatalf("pass after Trigger is #%d, want 2", got)
	}
	// The second pass asked for another one shortly: it runs without a
	// trigger or tick.
	if got := passes.WaitOrTimeout(t, 10*time.Second); got != 3 {
		t.Fatalf("pass at NextRun is #%d, want 3", got)
	}
}

func TestLoopTicksEveryInterval(t *testing.T) {
	var passes testsignal.Signal[struct{}]
	passes.Init()
	loop := startstop.NewLoop(startstop.LoopConfig{Interval: time.Millisecond, Pass: func(context.Context) { passes.Signal(struct{}{}) }})
	if err := loop.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer loop.Stop()
	for range 3 {
		passes.WaitOrTimeout(t, 10*time.Second)
	}
}

func TestLoopStopWaitsForThePassInFlightAndStopping(t *testing.T) {
	inPass := make(chan struct{})
	var passOver, stoppingRan atomic.Bool
	loop := startstop.NewLoop(startstop.LoopConfig{
		Pass: func(ctx context.Context) {
			close(inPass)
			<-ctx.Done()
			passOver.Store(true)
		},
		Stopping: func() { stoppingRan.Store(passOver.Load()) },
	})
	if err := loop.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, inPass, "the first pass")
	loop.Stop()
	if !passOver.Load() || !stoppingRan.Load() {
		t.Fatalf("Stop returned before the pass ended (%v) or Stopping ran after it (%v)", passOver.Load(), stoppingRan.Load())
	}
	if err := loop.Err(); err != nil {
		t.Fatalf("a clean stop reports %v", err)
	}
}

func TestStartingARunningServiceDoesNothing(t *testing.T) {
	var passes testsignal.Signal[int32]
	passes.Init()
	var n atomic.Int32
	loop := startstop.NewLoop(startstop.LoopConfig{Pass: func(context.Context) { passes.Signal(n.Add(1)) }})
	ctx := context.Background()
	if err := loop.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := loop.Start(ctx); err != nil {
		t.Fatal(err)
	}
	passes.WaitOrTimeout(t, 10*time.Second)
	loop.Stop()
	if got := n.Load(); got != 1 {
		t.Fatalf("%d passes, want 1: the second Start started a second loop", got)
	}
}

func TestStoppedIsClosedForAServiceNeverStarted(t *testing.T) {
	var s startstop.BaseStartStop
	waitFor(t, s.Stopped(), "Stopped of a service never started")
	s.Stop() // does not block
}

func TestCancellingTheStartContextStopsTheLoop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	loop := startstop.NewLoop(startstop.LoopConfig{Pass: func(context.Context) {}})
	if err := loop.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	waitFor(t, loop.Stopped(), "the loop stopping with its context")
}

// stuckPart never returns from its pass, whatever its context says: a
// handler that hangs.
func stuckPart(entered chan struct{}) *startstop.Loop {
	return startstop.NewLoop(startstop.LoopConfig{Pass: func(context.Context) {
		close(entered)
		select {}
	}})
}

func TestGroupStopIsBoundedByTheShutdownTimeoutWhenAPartNeverReturns(t *testing.T) {
	entered := make(chan struct{})
	var cleanStopped atomic.Bool
	clean := startstop.NewLoop(startstop.LoopConfig{Pass: func(context.Context) {}, Stopping: func() { cleanStopped.Store(true) }})
	g := startstop.NewGroup(50*time.Millisecond).Add("clean", clean).Add("stuck", stuckPart(entered))
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, entered, "the stuck pass")
	stopped := make(chan struct{})
	go func() { g.Stop(); close(stopped) }()
	waitFor(t, stopped, "Stop of a group with a part that never returns")
	err := g.Err()
	if !errors.Is(err, startstop.ErrShutdownTimeout) || !strings.Contains(err.Error(), "stuck") || strings.Contains(err.Error(), "clean") {
		t.Fatalf("Err = %v, want ErrShutdownTimeout naming only the stuck part", err)
	}
	if !cleanStopped.Load() {
		t.Fatal("the part that could stop was not stopped")
	}
}

// failing is a service that stops on its own with an error once told to.
type failing struct {
	startstop.BaseStartStop
	fail chan error
}

func (f *failing) Start(ctx context.Context) error {
	ctx, shouldStart, stopped := f.StartInit(ctx)
	if !shouldStart {
		return nil
	}
	go func() {
		select {
		case err := <-f.fail:
			stopped(err)
		case <-ctx.Done():
			stopped(nil)
		}
	}()
	return nil
}

func TestGroupStopsEveryPartWhenOneFails(t *testing.T) {
	boom := errors.New("consumer deleted")
	f := &failing{fail: make(chan error, 1)}
	other := startstop.NewLoop(startstop.LoopConfig{Pass: func(context.Context) {}})
	var releasedAfterParts atomic.Bool
	g := startstop.NewGroup(time.Minute).Add("other", other).Add("consumer", f).
		AfterStop(func() {
			select {
			case <-other.Stopped():
				releasedAfterParts.Store(true)
			default:
			}
		})
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.fail <- boom
	waitFor(t, g.Stopped(), "the group stopping after a part failed")
	waitFor(t, other.Stopped(), "the other part stopping")
	if err := g.Err(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "consumer stopped") {
		t.Fatalf("Err = %v, want the failure, naming the part", err)
	}
	if !releasedAfterParts.Load() {
		t.Fatal("AfterStop ran before every part had stopped")
	}
}

// unstartable cannot start.
type unstartable struct{ startstop.BaseStartStop }

func (u *unstartable) Start(context.Context) error { return errors.New("no such stream") }

func TestGroupStopsTheStartedPartsWhenOneCannotStart(t *testing.T) {
	first := startstop.NewLoop(startstop.LoopConfig{Pass: func(context.Context) {}})
	g := startstop.NewGroup(time.Minute).Add("first", first).Add("second", &unstartable{})
	err := g.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "starting second: no such stream") {
		t.Fatalf("Start = %v, want the part's error, naming it", err)
	}
	waitFor(t, first.Stopped(), "the part started before the failure stopping")
	waitFor(t, g.Stopped(), "the group stopping")
}
