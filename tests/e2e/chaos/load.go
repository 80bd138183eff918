package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// Acceptance of a request, as its sender knows it.
const (
	// accepted: JetStream acknowledged the publish, or the API answered
	// 201/202. Exactly one outcome is owed.
	accepted = "accepted"
	// refused: every attempt was answered 503 with Retry-After, the API's
	// promise that nothing was accepted. No outcome and no session may
	// exist.
	refused = "refused"
	// unknown: the sender never heard (timeouts, connection errors). At
	// most one outcome.
	unknown = "unknown"
)

// request is one session request the run sent.
type request struct {
	ID     string `json:"request_id"`
	Phase  string `json:"phase"`
	Via    string `json:"via"` // bus or http
	User   string `json:"user"`
	Status string `json:"acceptance"`
	// Seq is the stream sequence JetStream acknowledged (bus).
	Seq      uint64 `json:"seq,omitempty"`
	Attempts int    `json:"attempts"`
	LastErr  string `json:"last_error,omitempty"`
	// ExpectReason, when set, is the failure reason the request must get
	// (a poison request whose request_id can be read: invalid_request).
	ExpectReason string `json:"expect_reason,omitempty"`
	// Raw is a request published as raw bytes (poison); it is not sent
	// through the publisher.
	Raw []byte `json:"-"`
}

// loader drives steady request load through the bus (JetStream publishes,
// as libs/client does) and through the HTTP API of the config replicas,
// and destroys each session shortly after it is ready so that the engine
// holds a bounded number of containers.
type loader struct {
	c   *cluster
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *bus.Publisher

	mu    sync.Mutex
	reqs  []*request
	byID  map[string]*request
	phase string

	seq      atomic.Int64
	inflight sync.WaitGroup
	stopLoad chan struct{}
	loadDone chan struct{}
	destroys chan string
	sub      *nats.Subscription
}

func newLoader(c *cluster) (*loader, error) {
	nc, err := nats.Connect(c.natsURL(), nats.Name("greenroom-chaos"),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		// Publishes made while disconnected are refused at once instead of
		// buffered: the sender retries them itself, as a client should.
		nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	l := &loader{c: c, nc: nc, js: js, pub: bus.NewPublisher(js, nil), byID: map[string]*request{},
		destroys: make(chan string, 4096)}
	// Sessions are destroyed about a second after they are ready; what this
	// subscription misses (NATS down) the phase's end sweep destroys.
	l.sub, err = nc.Subscribe(events.TypeSessionReady, func(m *nats.Msg) {
		ev, err := events.Decode(m.Data)
		if err != nil {
			return
		}
		var r events.SessionReady
		if ev.DecodeData(&r) != nil || r.SessionID == "" {
			return
		}
		l.mu.Lock()
		_, ours := l.byID[r.RequestID]
		l.mu.Unlock()
		if ours {
			select {
			case l.destroys <- r.SessionID:
			default:
			}
		}
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	for range 2 {
		go l.destroyer()
	}
	return l, nil
}

func (l *loader) close() {
	close(l.destroys)
	if l.sub != nil {
		_ = l.sub.Unsubscribe()
	}
	l.nc.Close()
}

func (l *loader) destroyer() {
	for id := range l.destroys {
		time.Sleep(time.Second)
		l.destroy(context.Background(), id)
	}
}

// destroy deletes a session through the API, trying both config replicas.
func (l *loader) destroy(ctx context.Context, sessionID string) {
	for attempt := range 6 {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		status, _, err := l.c.api(ctx, attempt, http.MethodDelete, "/api/v1/sessions/"+sessionID, nil, nil)
		cancel()
		if err == nil || status == http.StatusNotFound || status == http.StatusConflict {
			return
		}
		time.Sleep(time.Second)
	}
}

// start begins sending rate requests per second, one in httpEvery through
// the HTTP API and the others on the bus, attributed to phase.
func (l *loader) start(phase string, rate float64, httpEvery int) {
	l.mu.Lock()
	l.phase = phase
	l.mu.Unlock()
	l.stopLoad, l.loadDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.loadDone)
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		for {
			select {
			case <-l.stopLoad:
				return
			case <-t.C:
				n := l.seq.Add(1)
				via := "bus"
				if httpEvery > 0 && n%int64(httpEvery) == 0 {
					via = "http"
				}
				l.send(via, nil)
			}
		}
	}()
}

// stop ends the load and waits (bounded) until every request sent has been
// acknowledged, refused or given up on.
func (l *loader) stop() {
	if l.stopLoad != nil {
		close(l.stopLoad)
		<-l.loadDone
		l.stopLoad = nil
	}
	done := make(chan struct{})
	go func() { l.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
	}
}

// burst sends n bus requests at once.
func (l *loader) burst(n int) {
	for range n {
		l.send("bus", nil)
	}
}

// send makes a request (r may preset fields, e.g. a poison one) and sends
// it in the background.
func (l *loader) send(via string, r *request) *request {
	l.mu.Lock()
	if r == nil {
		r = &request{}
	}
	if r.ID == "" {
		r.ID = uuid.NewString()
	}
	r.Phase, r.Via, r.Status = l.phase, via, unknown
	if r.User == "" {
		r.User = fmt.Sprintf("%s%d", userPrefix, len(l.reqs)%users)
	}
	l.reqs = append(l.reqs, r)
	l.byID[r.ID] = r
	l.mu.Unlock()
	l.inflight.Add(1)
	go func() {
		defer l.inflight.Done()
		if via == "http" {
			l.sendHTTP(r)
		} else {
			l.sendBus(r)
		}
	}()
	return r
}

func (l *loader) record(r *request, f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
}

// sendBus publishes with Nats-Msg-Id = request_id and retries the same
// request (deduplicated by JetStream) until it is acknowledged, for up to
// a minute: what a careful internal service does.
func (l *loader) sendBus(r *request) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var ack *jetstream.PubAck
		var err error
		if r.Raw != nil {
			msg := nats.NewMsg(events.TypeSessionRequested)
			msg.Data = r.Raw
			msg.Header.Set(jetstream.MsgIDHeader, r.ID)
			ack, err = l.js.PublishMsg(ctx, msg)
		} else {
			var ev events.Event
			ev, err = events.NewWithID(r.ID, "greenroom/chaos", events.TypeSessionRequested, events.SessionRequested{
				RequestID: r.ID, User: r.User, Workspace: workspace, Zone: zoneName})
			if err == nil {
				ack, err = l.pub.Publish(ctx, events.TypeSessionRequested, ev, r.ID)
			}
		}
		cancel()
		l.record(r, func() {
			r.Attempts++
			if err != nil {
				r.LastErr = err.Error()
			} else {
				r.Status, r.Seq = accepted, ack.Sequence
			}
		})
		if err == nil || time.Now().After(deadline) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sendHTTP posts the request with ?wait=0 (202 once accepted) to one config
// replica, then the other, retrying with the same request_id (the API's
// idempotency) for up to a minute.
func (l *loader) sendHTTP(r *request) {
	deadline := time.Now().Add(60 * time.Second)
	refusedEvery := true
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		status, hdr, err := l.c.api(ctx, attempt, http.MethodPost, "/api/v1/sessions?wait=0", map[string]any{
			"user": r.User, "workspace": workspace, "zone": zoneName, "request_id": r.ID}, nil)
		cancel()
		ok := err == nil && status < 300
		if !(status == http.StatusServiceUnavailable && hdr.Get("Retry-After") != "") {
			refusedEvery = false
		}
		l.record(r, func() {
			r.Attempts++
			switch {
			case ok:
				r.Status = accepted
			case err != nil:
				r.LastErr = err.Error()
			}
		})
		if ok {
			return
		}
		if status >= 400 && status < 500 {
			return // refused for good; the request is wrong
		}
		if time.Now().After(deadline) {
			if refusedEvery {
				l.record(r, func() { r.Status = refused })
			}
			return
		}
		time.Sleep(time.Second)
	}
}

// requests returns a snapshot of every request sent so far.
func (l *loader) requests() []request {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]request, len(l.reqs))
	for i, r := range l.reqs {
		out[i] = *r
	}
	return out
}

// poison publishes what no consumer can handle, on every subject a consumer
// reads, plus a request whose request_id can be read but whose user is
// missing (it must be answered invalid_request) and a spec-valid request
// with only the required attributes and unknown fields (it must be served).
func (l *loader) poison(ctx context.Context) (string, error) {
	garbage := [][]byte{[]byte("\x00\x01 not json"), []byte(`{"specversion":"1.0"}`), []byte(`[]`)}
	subjects := []string{events.TypeSessionRequested, "greenroom.session.assigned", "greenroom.provision.requested",
		"greenroom.session.expired", "greenroom.session.destroy", "greenroom.session.keepalive", "greenroom.config.changed.zone"}
	n := 0
	for _, s := range subjects {
		for _, g := range garbage {
			msg := nats.NewMsg(s)
			msg.Data = g
			msg.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := l.js.PublishMsg(pctx, msg)
			cancel()
			if err != nil {
				return "", fmt.Errorf("publishing poison on %s: %w", s, err)
			}
			n++
		}
	}
	// Readable request_id, no user: invalid_request.
	id := uuid.NewString()
	raw, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "chaos/poison",
		"type": events.TypeSessionRequested, "time": time.Now().UTC().Format(time.RFC3339Nano),
		"data": map[string]any{"request_id": id, "workspace": workspace, "zone": zoneName}})
	l.send("bus", &request{ID: id, Raw: raw, ExpectReason: events.ReasonInvalidRequest, User: "-"})
	// Only the required attributes, and unknown fields: served.
	id2 := uuid.NewString()
	user := userPrefix + "0"
	raw2, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": id2, "source": "chaos/sdk",
		"type": events.TypeSessionRequested, "x-unknown-extension": "yes",
		"data": map[string]any{"request_id": id2, "user": user, "workspace": workspace, "zone": zoneName, "future_field": 1}})
	l.send("bus", &request{ID: id2, Raw: raw2, User: user})
	return fmt.Sprintf("%d undecodable messages on %d subjects, 1 invalid request, 1 minimal request with unknown fields", n, len(subjects)), nil
}
