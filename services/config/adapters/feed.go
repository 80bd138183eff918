package adapters

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/startstop"
	"github.com/greenroom-dev/greenroom/services/config/app"
)

// FeedSubjects are the subjects the feed relays: every event of the bus.
const FeedSubjects = "greenroom.>"

// Feed relays the bus's events, as they are published, to the admin
// console's live views (app.EventFeed). It subscribes to FeedSubjects on
// core NATS, not through a JetStream consumer: a live view needs what
// happens from now on, each replica of the config service hears every
// event for its own browsers, and a browser that reconnects reloads its
// view from the API instead of replaying what it missed.
type Feed struct {
	startstop.Service
	nc *nats.Conn

	mu     sync.Mutex
	subs   map[*feedSub]struct{}
	closed bool
}

type feedSub struct {
	ch chan app.BusEvent
}

// NewFeed returns the feed of nc's events; it subscribes from Start until
// Stop, when every subscriber's channel is closed.
func NewFeed(nc *nats.Conn) *Feed {
	f := &Feed{nc: nc, subs: map[*feedSub]struct{}{}}
	f.Service = startstop.Func(f.run)
	return f
}

func (f *Feed) run(ctx context.Context) error {
	sub, err := f.nc.Subscribe(FeedSubjects, func(m *nats.Msg) {
		f.deliver(app.BusEvent{Subject: m.Subject, Data: m.Data})
	})
	if err != nil {
		return fmt.Errorf("subscribing to %s for the live views: %w", FeedSubjects, err)
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		close(s.ch)
		delete(f.subs, s)
	}
	return nil
}

// deliver hands ev to every subscriber; one whose buffer is full has
// fallen behind and is dropped (its channel closes), so that one slow
// browser neither holds up the others nor grows without bound.
func (f *Feed) deliver(ev app.BusEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		select {
		case s.ch <- ev:
		default:
			close(s.ch)
			delete(f.subs, s)
		}
	}
}

// Subscribe implements app.EventFeed.
func (f *Feed) Subscribe(buffer int) (<-chan app.BusEvent, func()) {
	s := &feedSub{ch: make(chan app.BusEvent, buffer)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	f.subs[s] = struct{}{}
	return s.ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[s]; ok {
			close(s.ch)
			delete(f.subs, s)
		}
	}
}
