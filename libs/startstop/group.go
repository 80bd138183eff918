package startstop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Group runs the parts of a service as one Service: Start starts them in
// the order they were added (and stops the started ones when one cannot
// start); they all stop together, when the group's context is done, Stop
// is called, or a part stops on its own with an error (which becomes the
// group's Err: a replica that can no longer do its job exits rather than
// limp on). A part that ends cleanly on its own (its work is done, or it
// is disabled and never started) is not a failure. Stopping waits at most
// the shutdown timeout; parts still running then are named in an error
// wrapping ErrShutdownTimeout.
type Group struct {
	BaseStartStop
	timeout   time.Duration
	parts     []Part
	afterStop []func()
}

// Part is a named service, for logs and errors.
type Part struct {
	Name    string
	Service Service
}

// NewGroup returns an empty group whose stop waits at most
// shutdownTimeout (no bound when it is zero).
func NewGroup(shutdownTimeout time.Duration) *Group {
	return &Group{timeout: shutdownTimeout}
}

// Add appends a part, named for logs and errors. Add before Start.
func (g *Group) Add(name string, svc Service) *Group {
	g.parts = append(g.parts, Part{name, svc})
	return g
}

// AfterStop adds f to what runs once every part has stopped (or the
// shutdown timeout gave up on them), before the group reports itself
// stopped: the release of what the parts shared, such as clients.
func (g *Group) AfterStop(f func()) *Group {
	g.afterStop = append(g.afterStop, f)
	return g
}

func (g *Group) release() {
	for _, f := range g.afterStop {
		f()
	}
}

// Start starts every part in order.
func (g *Group) Start(ctx context.Context) error {
	ctx, shouldStart, stopped := g.StartInit(ctx)
	if !shouldStart {
		return nil
	}
	for i, p := range g.parts {
		if err := p.Service.Start(ctx); err != nil {
			err = fmt.Errorf("starting %s: %w", p.Name, err)
			stopErr := StopWithin(g.timeout, g.parts[:i]...)
			g.release()
			stopped(errors.Join(err, stopErr))
			return err
		}
	}
	failed := make(chan error, len(g.parts))
	for _, p := range g.parts {
		go func() {
			select {
			case <-p.Service.Stopped():
				if err := p.Service.Err(); err != nil {
					failed <- fmt.Errorf("%s stopped: %w", p.Name, err)
				}
			case <-ctx.Done():
			}
		}()
	}
	go func() {
		var cause error
		select {
		case <-ctx.Done():
		case cause = <-failed:
		}
		stopErr := StopWithin(g.timeout, g.parts...)
		g.release()
		stopped(errors.Join(cause, stopErr))
	}()
	return nil
}

// StopWithin stops parts together and waits at most timeout (no bound
// when zero) for them. It returns their errors, and ErrShutdownTimeout
// naming those still running at the deadline.
func StopWithin(timeout time.Duration, parts ...Part) error {
	for _, p := range parts {
		go p.Service.Stop()
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	var errs []error
	var stuck []string
	for _, p := range parts {
		if stuck == nil {
			select {
			case <-p.Service.Stopped():
			case <-deadline:
				stuck = []string{}
			}
		}
		if stuck != nil && !isClosed(p.Service.Stopped()) {
			stuck = append(stuck, p.Name)
			continue
		}
		if err := p.Service.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
		}
	}
	if len(stuck) > 0 {
		errs = append(errs, fmt.Errorf("%w (%s): %s", ErrShutdownTimeout, timeout, strings.Join(stuck, ", ")))
	}
	return errors.Join(errs...)
}
