// Package client is how an internal service asks Greenroom for a session
// over NATS and learns the outcome. A caller writes three lines:
//
//	c, err := client.New(nc)           // once, with a *nats.Conn
//	defer c.Close()
//	s, err := c.Request(ctx, client.Request{User: "alice", Workspace: "demo", Zone: "zone-a"})
//
// Request publishes greenroom.session.requested to JetStream with
// Nats-Msg-Id = request_id and waits for greenroom.session.ready or
// greenroom.session.failed carrying that request_id. Requests are
// idempotent: the same RequestID always yields the same session.
package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// Request names what the user wants. RequestID is optional: one is
// generated when empty; set it to make retries safe.
type Request struct {
	RequestID string
	User      string
	Workspace string
	Zone      string
}

// Session is the outcome of a successful request.
type Session = events.SessionReady

// FailedError is the outcome of a request that could not be served.
type FailedError struct {
	RequestID string
	Reason    string // one of the events.Reason* constants
	Detail    string
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("session request %s failed (%s): %s", e.RequestID, e.Reason, e.Detail)
}

// ErrFailed matches every *FailedError with errors.Is.
var ErrFailed = errors.New("session request failed")

// Is makes errors.Is(err, ErrFailed) true for a *FailedError.
func (e *FailedError) Is(target error) bool { return target == ErrFailed }

type outcome struct {
	ready  *events.SessionReady
	failed *events.SessionFailed
}

// Client publishes requests and routes their outcomes to waiters. It is safe
// for concurrent use; one Client per process is enough.
type Client struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	pub    *bus.Publisher
	source string
	// requester qualifies the subjects of requests and outcomes
	// (events.SubjectFor); "" is the unqualified ones.
	requester string
	subs      []*nats.Subscription

	mu      sync.Mutex
	waiters map[string][]chan outcome
}

// Option configures a Client.
type Option func(*Client)

// WithSource sets the CloudEvents source of published requests.
func WithSource(source string) Option { return func(c *Client) { c.source = source } }

// WithRequester makes the client a named requesting service: it publishes
// its requests on greenroom.session.requested.<name> and hears their
// outcomes on greenroom.session.ready.<name> and .failed.<name>, the
// subjects its NATS user is allowed (README, "NATS users"). name must be
// events.ValidRequester.
func WithRequester(name string) Option { return func(c *Client) { c.requester = name } }

// New subscribes to outcomes on nc. Outcomes are routed by the
// Greenroom-Request-Id header, so one subscription serves every waiter.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c := &Client{nc: nc, js: js, pub: bus.NewPublisher(js, nil), source: "greenroom/client", waiters: map[string][]chan outcome{}}
	for _, o := range opts {
		o(c)
	}
	if c.requester != "" && !events.ValidRequester(c.requester) {
		return nil, fmt.Errorf("requester %q: letters, digits, '-' and '_' only, at most 64", c.requester)
	}
	for _, subject := range c.outcomeSubjects() {
		sub, err := nc.Subscribe(subject, c.route)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("subscribing to %s: %w", subject, err)
		}
		c.subs = append(c.subs, sub)
	}
	// Make sure the server has the subscriptions before any publish.
	if err := nc.Flush(); err != nil {
		c.Close()
		return nil, fmt.Errorf("flushing subscriptions: %w", err)
	}
	return c, nil
}

// outcomeSubjects are the subjects of this client's outcomes.
func (c *Client) outcomeSubjects() []string {
	return []string{events.SubjectFor(events.TypeSessionReady, c.requester), events.SubjectFor(events.TypeSessionFailed, c.requester)}
}

// Close stops routing outcomes.
func (c *Client) Close() {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
}

func (c *Client) route(msg *nats.Msg) {
	requestID := msg.Header.Get(events.HeaderRequestID)
	if requestID == "" {
		return
	}
	c.mu.Lock()
	// A copy: done() edits the waiter list in place.
	ws := slices.Clone(c.waiters[requestID])
	c.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	o, err := decodeOutcome(msg.Data)
	if err != nil {
		return
	}
	for _, w := range ws {
		select {
		case w <- o:
		default:
		}
	}
}

func decodeOutcome(raw []byte) (outcome, error) {
	ev, err := events.Decode(raw)
	if err != nil {
		return outcome{}, err
	}
	switch ev.Type {
	case events.TypeSessionReady:
		var r events.SessionReady
		if err := ev.DecodeData(&r); err != nil {
			return outcome{}, err
		}
		return outcome{ready: &r}, nil
	case events.TypeSessionFailed:
		var f events.SessionFailed
		if err := ev.DecodeData(&f); err != nil {
			return outcome{}, err
		}
		return outcome{failed: &f}, nil
	}
	return outcome{}, fmt.Errorf("not an outcome: %s", ev.Type)
}

func (c *Client) wait(requestID string) (chan outcome, func()) {
	ch := make(chan outcome, 1)
	c.mu.Lock()
	c.waiters[requestID] = append(c.waiters[requestID], ch)
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		ws := c.waiters[requestID]
		for i, w := range ws {
			if w == ch {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(c.waiters, requestID)
		} else {
			c.waiters[requestID] = ws
		}
	}
}

// Publish sends the request without waiting for its outcome and returns its
// request_id. duplicate is true when JetStream already had this request_id
// within its duplicate window.
func (c *Client) Publish(ctx context.Context, r Request) (requestID string, duplicate bool, err error) {
	if r.RequestID == "" {
		r.RequestID = uuid.NewString()
	}
	// The event id is the stream's de-duplication key (Nats-Msg-Id): a
	// named requester's is prefixed with its name, so that another
	// requester publishing the same request_id first cannot make the
	// stream drop this one as a duplicate.
	id := r.RequestID
	if c.requester != "" {
		id = c.requester + ":" + r.RequestID
	}
	ev, err := events.NewWithID(id, c.source, events.TypeSessionRequested, events.SessionRequested{
		RequestID: r.RequestID, User: r.User, Workspace: r.Workspace, Zone: r.Zone,
	})
	if err != nil {
		return "", false, err
	}
	ack, err := c.pub.Publish(ctx, events.SubjectFor(events.TypeSessionRequested, c.requester), ev, r.RequestID)
	if err != nil {
		return "", false, err
	}
	return r.RequestID, ack.Duplicate, nil
}

// Request publishes r and waits until its session is ready, it fails, or
// ctx ends.
func (c *Client) Request(ctx context.Context, r Request) (Session, error) {
	p := c.Expect(r)
	defer p.Close()
	_, duplicate, err := c.Publish(ctx, p.r)
	if err != nil {
		return Session{}, err
	}
	if duplicate {
		// The request was already made; its outcome may already be in the
		// stream, so look there as well as waiting.
		p.LookBack(ctx, bus.StreamDuplicatesDefault+time.Minute)
	}
	return p.Wait(ctx)
}

// Pending is a request whose outcome is awaited. It is registered before
// the request is sent — by Publish, or by a caller that writes requests to
// its outbox and publishes them after the commit — so that an outcome that
// comes at once is not missed.
type Pending struct {
	c    *Client
	r    Request
	ch   chan outcome
	done func()
}

// Expect registers the wait for r's outcome (a RequestID is generated when
// r has none; RequestID tells it). Close it when done.
func (c *Client) Expect(r Request) *Pending {
	if r.RequestID == "" {
		r.RequestID = uuid.NewString()
	}
	ch, done := c.wait(r.RequestID)
	return &Pending{c: c, r: r, ch: ch, done: done}
}

// RequestID is the request's id.
func (p *Pending) RequestID() string { return p.r.RequestID }

// LookBack also looks in the stream, up to lookback, for an outcome
// published already (the request was made before), in the background.
func (p *Pending) LookBack(ctx context.Context, lookback time.Duration) {
	go func() {
		if o, ok := p.c.findOutcome(ctx, p.r.RequestID, lookback); ok {
			select {
			case p.ch <- o:
			default:
			}
		}
	}()
}

// Wait waits until the session is ready, the request fails, or ctx ends.
// A session of another user or workspace — the request_id reused by
// someone else, which the assigner refuses — is never taken as this
// request's.
func (p *Pending) Wait(ctx context.Context) (Session, error) {
	for {
		s, err := p.c.await(ctx, p.r.RequestID, p.ch)
		if err == nil && (s.User != p.r.User || s.Workspace != p.r.Workspace) {
			continue
		}
		return s, err
	}
}

// Close ends the wait.
func (p *Pending) Close() { p.done() }

// Await waits for the outcome of a request published earlier (by anyone).
// It also looks back in the stream, up to lookback, for an outcome that was
// already published.
func (c *Client) Await(ctx context.Context, requestID string, lookback time.Duration) (Session, error) {
	ch, done := c.wait(requestID)
	defer done()
	go func() {
		if o, ok := c.findOutcome(ctx, requestID, lookback); ok {
			select {
			case ch <- o:
			default:
			}
		}
	}()
	return c.await(ctx, requestID, ch)
}

func (c *Client) await(ctx context.Context, requestID string, ch chan outcome) (Session, error) {
	select {
	case <-ctx.Done():
		return Session{}, fmt.Errorf("waiting for session request %s: %w", requestID, ctx.Err())
	case o := <-ch:
		if o.failed != nil {
			return Session{}, &FailedError{RequestID: requestID, Reason: o.failed.Reason, Detail: o.failed.Detail}
		}
		return *o.ready, nil
	}
}

// findOutcome scans the outcomes recorded in the last `lookback` for
// requestID, one outcome subject at a time: an ordered consumer with one
// filter subject names it in its API subject, which a requester's NATS
// permissions allow for its own outcome subjects only.
func (c *Client) findOutcome(ctx context.Context, requestID string, lookback time.Duration) (outcome, bool) {
	start := time.Now().Add(-lookback)
	for _, subject := range c.outcomeSubjects() {
		if o, ok := c.findOutcomeOn(ctx, subject, requestID, start); ok {
			return o, true
		}
	}
	return outcome{}, false
}

func (c *Client) findOutcomeOn(ctx context.Context, subject, requestID string, start time.Time) (outcome, bool) {
	cons, err := c.js.OrderedConsumer(ctx, bus.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return outcome{}, false
	}
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return outcome{}, false
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			if msg.Headers().Get(events.HeaderRequestID) != requestID {
				continue
			}
			if o, err := decodeOutcome(msg.Data()); err == nil {
				return o, true
			}
		}
		if n == 0 || ctx.Err() != nil {
			return outcome{}, false
		}
	}
}
