// Package events defines Greenroom's event envelope (CloudEvents 1.0, JSON
// structured mode), the event types and subjects, and the payload of each
// type. The JSON Schemas in schemas/events are the contract; Validator checks
// an event against them.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SpecVersion is the CloudEvents version of every Greenroom event.
const SpecVersion = "1.0"

// SchemaVersion is the version of the payload schemas, carried in each
// event's dataschema.
const SchemaVersion = "1"

// Event types. The NATS subject of an event equals its type, except
// greenroom.config.changed which is published on
// greenroom.config.changed.<kind> and greenroom.dead on greenroom.dead.<consumer>.
const (
	TypeSessionRequested   = "greenroom.session.requested"
	TypeSessionAssigned    = "greenroom.session.assigned"
	TypeProvisionRequested = "greenroom.provision.requested"
	TypeSessionStaged      = "greenroom.session.staged"
	TypeSessionReady       = "greenroom.session.ready"
	TypeSessionFailed      = "greenroom.session.failed"
	TypeSessionDestroy     = "greenroom.session.destroy"
	TypeSessionDestroyed   = "greenroom.session.destroyed"
	TypeSessionExpired     = "greenroom.session.expired"
	TypeSessionKeepalive   = "greenroom.session.keepalive"
	TypeStagingViolation   = "greenroom.staging.violation"
	TypeStagingShortfall   = "greenroom.staging.shortfall"
	TypeConfigChanged      = "greenroom.config.changed"
	TypeDeadLetter         = "greenroom.dead"
)

// Types lists every event type; each has a schema in schemas/events.
var Types = []string{
	TypeSessionRequested, TypeSessionAssigned, TypeProvisionRequested,
	TypeSessionStaged, TypeSessionReady, TypeSessionFailed,
	TypeSessionDestroy, TypeSessionDestroyed, TypeSessionExpired, TypeSessionKeepalive,
	TypeStagingViolation, TypeStagingShortfall, TypeConfigChanged,
	TypeDeadLetter,
}

// HeaderRequestID is the NATS header carrying the request_id of events about
// a request, so waiters can route outcomes without decoding payloads.
const HeaderRequestID = "Greenroom-Request-Id"

// ErrMalformed wraps every decoding failure: such a message can never be
// handled and is dead-lettered rather than retried.
var ErrMalformed = errors.New("malformed event")

// Event is a CloudEvents 1.0 event in JSON structured mode.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	DataSchema      string          `json:"dataschema"`
	DataContentType string          `json:"datacontenttype"`
	Subject         string          `json:"subject,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// SchemaName is the file name (without .json) of an event type's schema.
func SchemaName(eventType string) string {
	return strings.TrimPrefix(eventType, "greenroom.")
}

// DataSchemaURI names the schema and version of an event type's payload.
func DataSchemaURI(eventType string) string {
	return "urn:greenroom:schema:" + SchemaName(eventType) + ":" + SchemaVersion
}

// New builds an event with a fresh time-ordered id. source names the
// producing service, e.g. "greenroom/assigner".
func New(source, eventType string, data any) (Event, error) {
	return NewWithID(uuid.Must(uuid.NewV7()).String(), source, eventType, data)
}

// NewWithID builds an event with a caller-chosen id. Use it when the id must
// be deterministic so that a retried publish is de-duplicated by JetStream
// (Nats-Msg-Id is the event id).
func NewWithID(id, source, eventType string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encoding %s data: %w", eventType, err)
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source,
		Type:            eventType,
		Time:            time.Now().UTC(),
		DataSchema:      DataSchemaURI(eventType),
		DataContentType: "application/json",
		Data:            raw,
	}, nil
}

// Decode parses a structured-mode CloudEvent and checks its envelope.
func Decode(b []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case ev.SpecVersion != SpecVersion:
		return Event{}, fmt.Errorf("%w: specversion %q, want %q", ErrMalformed, ev.SpecVersion, SpecVersion)
	case ev.ID == "":
		return Event{}, fmt.Errorf("%w: missing id", ErrMalformed)
	case ev.Type == "":
		return Event{}, fmt.Errorf("%w: missing type", ErrMalformed)
	case len(ev.Data) == 0 || string(ev.Data) == "null":
		return Event{}, fmt.Errorf("%w: missing data", ErrMalformed)
	}
	return ev, nil
}

// DecodeData unmarshals the payload into v, rejecting unknown fields.
func (e Event) DecodeData(v any) error {
	dec := json.NewDecoder(strings.NewReader(string(e.Data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s data: %v", ErrMalformed, e.Type, err)
	}
	return nil
}

// Marshal encodes the event as JSON.
func (e Event) Marshal() ([]byte, error) { return json.Marshal(e) }
