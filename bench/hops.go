package bench

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// hops splits the latency of staged requests at the events on the way:
// request published → session.assigned written by the assigner (bus in,
// claim) → session.ready written by the provisioner (delivery to it, the
// assign exec, its commit) → session.ready received by the requester
// (its publish after the commit, stream, subscriber). The times written are the CloudEvents
// time each service sets in its transaction, on the same clock as ours.
type hops struct {
	sub  *nats.Subscription
	mu   sync.Mutex
	sent map[string]time.Time // request id → published
	// request id → when the event was written, and when session.ready
	// reached us.
	assigned, ready, received map[string]time.Time
	// request id → when session.assigned reached us: the moment it was on
	// the bus, which the provisioner's consumer sees about as soon.
	assignedSeen map[string]time.Time
}

func newHops(nc *nats.Conn) (*hops, error) {
	h := &hops{sent: map[string]time.Time{}, assigned: map[string]time.Time{},
		ready: map[string]time.Time{}, received: map[string]time.Time{}, assignedSeen: map[string]time.Time{}}
	sub, err := nc.Subscribe("greenroom.session.>", func(m *nats.Msg) {
		now := time.Now()
		if m.Subject != events.TypeSessionAssigned && m.Subject != events.TypeSessionReady {
			return
		}
		var ev struct {
			Time time.Time `json:"time"`
			Data struct {
				RequestID string `json:"request_id"`
			} `json:"data"`
		}
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		id := m.Header.Get(events.HeaderRequestID)
		if id == "" {
			id = ev.Data.RequestID
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.sent[id]; !ok {
			return
		}
		if m.Subject == events.TypeSessionAssigned {
			h.assigned[id] = ev.Time
			h.assignedSeen[id] = now
			return
		}
		h.ready[id] = ev.Time
		h.received[id] = now
	})
	if err != nil {
		return nil, err
	}
	h.sub = sub
	return h, nc.Flush()
}

func (h *hops) close() { _ = h.sub.Unsubscribe() }

// send records that request id is published now.
func (h *hops) send(id string) {
	h.mu.Lock()
	h.sent[id] = time.Now()
	h.mu.Unlock()
}

// split returns, sorted, the three hops of the requests in ids that have
// all their events.
func (h *hops) split(ids []string) (assign, provision, delivery []time.Duration) {
	f := h.fineSplit(ids)
	return f.assign, f.provision, f.delivery
}

// hopSplit is a request's time cut at its events, each hop sorted: assign
// (request published → session.assigned written), provision
// (session.assigned written → session.ready written), and delivery
// (session.ready written → received); the provision hop is further cut
// where session.assigned was seen on the bus: relay (its commit, the
// publish after it) and the rest (the provisioner's consumer, its
// handling, up to session.ready written).
type hopSplit struct {
	assign, provision, delivery, relay, handling []time.Duration
}

func (h *hops) fineSplit(ids []string) hopSplit {
	h.mu.Lock()
	defer h.mu.Unlock()
	var f hopSplit
	for _, id := range ids {
		s, a, seen, r, got := h.sent[id], h.assigned[id], h.assignedSeen[id], h.ready[id], h.received[id]
		if a.IsZero() || r.IsZero() || got.IsZero() {
			continue
		}
		f.assign = append(f.assign, a.Sub(s))
		f.provision = append(f.provision, r.Sub(a))
		f.delivery = append(f.delivery, got.Sub(r))
		f.relay = append(f.relay, seen.Sub(a))
		f.handling = append(f.handling, r.Sub(seen))
	}
	for _, d := range []*[]time.Duration{&f.assign, &f.provision, &f.delivery, &f.relay, &f.handling} {
		*d = sorted(*d).lat
	}
	return f
}
