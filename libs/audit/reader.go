package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// Record is one event as the stream stores it.
type Record struct {
	Seq     uint64
	Time    time.Time // when the server stored it
	Subject string
	Header  nats.Header
	Payload []byte
}

// Event decodes the record's CloudEvent.
func (r Record) Event() (events.Event, error) { return events.Decode(r.Payload) }

// Digest is the record's digest (DigestOf).
func (r Record) Digest() Digest { return DigestOf(r.Subject, r.Header, r.Payload) }

// Range says which part of the stream Read reads: from FromSeq (or, when
// it is 0, from the first event stored at or after Since; both zero: the
// first event kept), up to UntilSeq and Until when set, and never past the
// last event stored when Read began, so a read of a busy stream ends.
type Range struct {
	FromSeq  uint64
	Since    time.Time
	UntilSeq uint64
	Until    time.Time
	// Subjects narrows the read to these subject filters (all when empty).
	Subjects []string
}

// fetchBatch is how many events one fetch asks for.
const fetchBatch = 1000

// ErrNoStream: the GREENROOM stream does not exist.
var ErrNoStream = errors.New("stream " + bus.StreamName + " does not exist yet: no Greenroom service has started on this NATS server")

// Read calls fn with each event of the range in stream order, through a
// consumer of its own (an ephemeral pull consumer, deleted when Read
// returns: nothing any service reads is touched, and nothing is
// published). It returns the stream's state when it began.
func Read(ctx context.Context, js jetstream.JetStream, r Range, fn func(Record) error) (jetstream.StreamState, error) {
	st, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return jetstream.StreamState{}, ErrNoStream
		}
		return jetstream.StreamState{}, fmt.Errorf("reading stream %s: %w", bus.StreamName, err)
	}
	state := st.CachedInfo().State
	last := state.LastSeq
	if r.UntilSeq != 0 && r.UntilSeq < last {
		last = r.UntilSeq
	}
	if state.Msgs == 0 || last == 0 || r.FromSeq > last {
		return state, nil
	}
	cfg := jetstream.ConsumerConfig{
		Description:    "greenroom audit read",
		FilterSubjects: r.Subjects,
		AckPolicy:      jetstream.AckNonePolicy,
		MemoryStorage:  true,
		// Gone soon after a reader that died without deleting it.
		InactiveThreshold: time.Minute,
	}
	switch {
	case r.FromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.FromSeq
	case !r.Since.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &r.Since
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := js.CreateConsumer(ctx, bus.StreamName, cfg)
	if err != nil {
		return state, fmt.Errorf("reading stream %s: %w", bus.StreamName, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, bus.StreamName, cons.CachedInfo().Name)
	}()
	for empty := 0; ; {
		if err := ctx.Err(); err != nil {
			return state, err
		}
		batch, err := cons.FetchNoWait(fetchBatch)
		if err != nil {
			return state, fmt.Errorf("fetching events: %w", err)
		}
		n, done := 0, false
		for msg := range batch.Messages() {
			n++
			if done {
				continue // drain the batch
			}
			md, err := msg.Metadata()
			if err != nil {
				return state, fmt.Errorf("reading event metadata: %w", err)
			}
			seq := md.Sequence.Stream
			if seq > last || (!r.Until.IsZero() && md.Timestamp.After(r.Until)) {
				done = true
				continue
			}
			if err := fn(Record{Seq: seq, Time: md.Timestamp, Subject: msg.Subject(), Header: msg.Headers(), Payload: msg.Data()}); err != nil {
				return state, err
			}
			if seq == last || md.NumPending == 0 {
				done = true
			}
		}
		if err := batch.Error(); err != nil {
			return state, fmt.Errorf("fetching events: %w", err)
		}
		if done {
			return state, nil
		}
		if n > 0 {
			empty = 0
			continue
		}
		// Nothing came: the end (what is left of the range was deleted,
		// or the filter matches nothing more), or the server was slow.
		info, err := cons.Info(ctx)
		if err != nil {
			return state, fmt.Errorf("reading the audit consumer: %w", err)
		}
		if info.NumPending == 0 || info.Delivered.Stream >= last {
			return state, nil
		}
		if empty++; empty > 50 {
			return state, fmt.Errorf("the stream stopped delivering at seq %d of %d (%d pending)", info.Delivered.Stream, last, info.NumPending)
		}
		select {
		case <-ctx.Done():
			return state, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
