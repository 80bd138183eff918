package docker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
)

// ContainerEvents subscribes to the engine's container events. Events
// arrive on the first channel until ctx is done or the stream breaks; the
// second then receives why (io.EOF when the engine closed it), once. The
// engine sends nothing back until there is an event, so a broken
// subscription shows only as that error; call Ping first to know the
// engine answers.
func (e *Engine) ContainerEvents(ctx context.Context, opts audit.ContainerEventsOptions) (<-chan audit.ContainerEvent, <-chan error) {
	f := labelFilters(opts.Labels).Add("type", string(events.ContainerEventType))
	for _, a := range opts.Actions {
		f.Add("event", a)
	}
	lo := client.EventsListOptions{Filters: f}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	stream := e.c.Events(ctx, lo)
	msgs, errs := stream.Messages, stream.Err
	out := make(chan audit.ContainerEvent)
	outErr := make(chan error, 1)
	go func() {
		for {
			select {
			case m := <-msgs:
				select {
				case out <- containerEvent(m):
				case <-ctx.Done():
					outErr <- ctx.Err()
					return
				}
			case err := <-errs:
				if err == nil {
					err = fmt.Errorf("event stream of %s ended", e.endpoint)
				}
				outErr <- fmt.Errorf("events of %s: %w", e.endpoint, err)
				return
			}
		}
	}()
	return out, outErr
}

// Ping checks that the engine answers.
func (e *Engine) Ping(ctx context.Context) error {
	if _, err := e.c.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker engine %s does not answer: %w", e.endpoint, err)
	}
	return nil
}

// containerEvent keeps what Greenroom needs of an engine event. A
// container's event attributes are its labels plus "name", "image" and,
// for "die", "exitCode".
func containerEvent(m events.Message) audit.ContainerEvent {
	ev := audit.ContainerEvent{Action: string(m.Action), ContainerID: m.Actor.ID, Labels: m.Actor.Attributes}
	if code, ok := m.Actor.Attributes["exitCode"]; ok {
		if n, err := strconv.Atoi(code); err == nil {
			ev.ExitCode, ev.HasExitCode = n, true
		}
	}
	switch {
	case m.TimeNano != 0:
		ev.Time = time.Unix(0, m.TimeNano)
	case m.Time != 0:
		ev.Time = time.Unix(m.Time, 0)
	}
	return ev
}
