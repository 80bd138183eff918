// Package startstop is the one lifecycle of every Greenroom service and
// background loop, modelled on river's internal/startstop: Start launches
// the work and returns once it runs (or could not start), Stop asks it to
// stop and waits, Stopped is closed once it has, and Err says why it ended
// when that was not a plain stop. A component embeds BaseStartStop and
// calls StartInit at the top of its Start.
//
// Loop is the skeleton of every periodic pass (expiry sweeper, staging
// reconciler, container auditor, engine watcher, outbox relay); Group runs
// a service's parts as one and bounds their stop by the shutdown timeout.
package startstop

import (
	"context"
	"errors"
	"sync"
)

// Service is anything with the lifecycle.
type Service interface {
	// Start launches the service in the background. It returns an error
	// only when the service could not start; calling it on a running
	// service does nothing. The service runs until ctx is done or Stop.
	Start(ctx context.Context) error
	// Stop asks the service to stop and waits until it has. Bound the wait
	// with a Group (or StopWithin) where a stuck part must not hang the
	// caller.
	Stop()
	// Stopped is closed once the service has stopped (at once if it never
	// started).
	Stopped() <-chan struct{}
	// Err is why the service stopped when it stopped on its own or did
	// not stop cleanly; nil after a clean stop or while it runs.
	Err() error
}

// ErrShutdownTimeout is reported by what gave up waiting for a part at the
// end of the shutdown timeout (GREENROOM_SHUTDOWN_TIMEOUT).
var ErrShutdownTimeout = errors.New("still running at the end of the shutdown timeout")

// BaseStartStop implements Stop, Stopped and Err for a service that
// embeds it. Its zero value is ready.
type BaseStartStop struct {
	mu      sync.Mutex
	cancel  context.CancelFunc
	stopped chan struct{}
	err     error
}

// StartInit begins a Start. ctx is what the service's goroutine runs
// under: cancelled by Stop or by the caller's context. shouldStart is false
// when the service already runs; Start then returns nil at once. The
// service calls stopped exactly once, when its work has ended (also when
// Start fails after StartInit), with the reason (nil for a clean stop).
func (b *BaseStartStop) StartInit(ctx context.Context) (_ context.Context, shouldStart bool, stopped func(error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped != nil && !isClosed(b.stopped) {
		return ctx, false, func(error) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.cancel, b.stopped, b.err = cancel, done, nil
	var once sync.Once
	return ctx, true, func(err error) {
		once.Do(func() {
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
			cancel()
			close(done)
		})
	}
}

// Stop cancels the service's context and waits until it has stopped.
func (b *BaseStartStop) Stop() {
	b.mu.Lock()
	cancel, done := b.cancel, b.stopped
	b.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Stopped is closed once the service has stopped; it is closed already
// when the service never started.
func (b *BaseStartStop) Stopped() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped == nil {
		return closedChan
	}
	return b.stopped
}

// Err is the reason the service gave when it stopped.
func (b *BaseStartStop) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Func is a service that runs fn until ctx is done: for a part that is
// one blocking call, or that only has to act when the service stops.
// fn's error is the service's Err.
func Func(fn func(ctx context.Context) error) Service {
	return &funcService{fn: fn}
}

type funcService struct {
	BaseStartStop
	fn func(ctx context.Context) error
}

func (f *funcService) Start(ctx context.Context) error {
	ctx, shouldStart, stopped := f.StartInit(ctx)
	if !shouldStart {
		return nil
	}
	go func() { stopped(f.fn(ctx)) }()
	return nil
}
