// Package bus is Greenroom's use of NATS JetStream: the GREENROOM stream,
// one durable pull consumer per service, publishing with Nats-Msg-Id, and a
// consume loop that acks explicitly, retries with backoff, keeps long
// handlers alive with in-progress acks, and dead-letters what it cannot
// handle on greenroom.dead.<consumer> instead of retrying it forever. Each
// consumer counts its deliveries, redeliveries and dead letters and reports
// its lag, read from the server at each scrape (metrics.go).
package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// StreamName is the one stream that records every Greenroom subject.
const StreamName = "GREENROOM"

// Stream defaults (see DESIGN.md "Bus").
const (
	StreamMaxAgeDefault     = 30 * 24 * time.Hour
	StreamDuplicatesDefault = 2 * time.Minute
	StreamReplicasDefault   = 1
)

// Validator checks an encoded event against its schema (events.Validator):
// Validate as a writer must send it (Publisher refuses what fails it),
// ValidateReceived as a reader accepts it (Consumer), which ignores unknown
// fields and needs only the attributes CloudEvents requires, so that events
// from a newer writer or another CloudEvents client are still handled.
type Validator interface {
	Validate(raw []byte) error
	ValidateReceived(raw []byte) error
}

// Publisher publishes events to JetStream and waits for the stream's ack.
type Publisher struct {
	js        jetstream.JetStream
	validator Validator
}

// NewPublisher returns a Publisher; validator may be nil.
func NewPublisher(js jetstream.JetStream, validator Validator) *Publisher {
	return &Publisher{js: js, validator: validator}
}

// Publish sends ev on subject with Nats-Msg-Id = ev.ID, so a retried publish
// within the duplicate window is stored once. requestID, when set, is also
// carried in the Greenroom-Request-Id header.
func (p *Publisher) Publish(ctx context.Context, subject string, ev events.Event, requestID string) (*jetstream.PubAck, error) {
	raw, err := ev.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", ev.Type, err)
	}
	return p.PublishRaw(ctx, subject, ev.ID, raw, requestID)
}

// PublishRaw publishes an already encoded event (the outbox stores them so).
func (p *Publisher) PublishRaw(ctx context.Context, subject, id string, raw []byte, requestID string) (*jetstream.PubAck, error) {
	if p.validator != nil {
		if err := p.validator.Validate(raw); err != nil {
			return nil, fmt.Errorf("refusing to publish invalid event %s on %s: %w", id, subject, err)
		}
	}
	msg := nats.NewMsg(subject)
	msg.Data = raw
	if requestID != "" {
		msg.Header.Set(events.HeaderRequestID, requestID)
	}
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if err != nil {
		return nil, fmt.Errorf("publishing %s on %s: %w", id, subject, err)
	}
	return ack, nil
}

// permanentError marks a failure that no retry can fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the consumer dead-letters the message at once
// instead of redelivering it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err: err}
}

// IsPermanent reports whether err (or what it wraps) was marked Permanent or
// is a decoding failure.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || errors.Is(err, events.ErrMalformed)
}
