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
	"unicode/utf8"

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
	// TypeContainerCreated: the provisioner recorded a container it
	// created for a session (one event per container).
	TypeContainerCreated = "greenroom.container.created"
	// TypeContainerRemoved: the orphan collector removed a container
	// whose session has no row or has ended, whose own
	// greenroom.session.destroyed may already be in the log.
	TypeContainerRemoved = "greenroom.container.removed"
	// TypeSessionAssignRan: a claimed staged session's assign step (its
	// assign hook, its docker_exec_config assign command, or none)
	// finished, with its result.
	TypeSessionAssignRan = "greenroom.session.assign_ran"
	// TypeAuditCheckpoint: the audit notary (libs/audit) checkpointed the
	// stream: digests of the events it covers and the hash chain over them.
	TypeAuditCheckpoint = "greenroom.audit.checkpoint"
	// TypeAgentLifecycle: the provisioner's autoscaler moved one of its
	// Docker agents to the next step of its life (made, active, draining,
	// deleting, deleted), in the transaction that changed the agent's row,
	// so that the log alone says which machines a pool had and why.
	TypeAgentLifecycle = "greenroom.agent.lifecycle"
)

// Types lists every event type; each has a schema in schemas/events.
var Types = []string{
	TypeSessionRequested, TypeSessionAssigned, TypeProvisionRequested,
	TypeSessionStaged, TypeSessionReady, TypeSessionFailed,
	TypeSessionDestroy, TypeSessionDestroyed, TypeSessionExpired, TypeSessionKeepalive,
	TypeStagingViolation, TypeStagingShortfall, TypeConfigChanged,
	TypeDeadLetter, TypeContainerCreated, TypeContainerRemoved, TypeSessionAssignRan,
	TypeAuditCheckpoint, TypeAgentLifecycle,
}

// SubjectFor is the subject of a session request, or of its outcome
// (TypeSessionReady, TypeSessionFailed), for a requesting service:
// eventType itself when requester is empty, eventType.<requester>
// otherwise. A requesting service with its own NATS user may publish only
// greenroom.session.requested.<its name> and read only the outcomes on
// greenroom.session.ready.<its name> and .failed.<its name> (README, "NATS
// users"), so the subject proves who asked and nobody else hears the
// answer.
func SubjectFor(eventType, requester string) string {
	if requester == "" {
		return eventType
	}
	return eventType + "." + requester
}

// RequesterOf is the requesting service a session request's subject
// names: the token after greenroom.session.requested., or "".
func RequesterOf(subject string) string {
	r, _ := strings.CutPrefix(subject, TypeSessionRequested+".")
	if r == subject {
		return ""
	}
	return r
}

// ValidRequester reports whether name can be a requester, one token of a
// subject: letters, digits, '-' and '_', at most 64.
func ValidRequester(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// HeaderRequestID is the NATS header carrying the request_id of events about
// a request, so waiters can route outcomes without decoding payloads.
const HeaderRequestID = "Greenroom-Request-Id"

// ErrMalformed wraps every decoding failure: such a message can never be
// handled and is dead-lettered rather than retried.
var ErrMalformed = errors.New("malformed event")

// Event is a CloudEvents 1.0 event in JSON structured mode. Greenroom's
// writers set every attribute but Subject (New); a reader accepts any
// spec-valid event, where Time, DataSchema and DataContentType may be
// absent (zero) and unknown attributes are ignored (Decode).
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time,omitzero"`
	DataSchema      string          `json:"dataschema,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
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

// Decode parses a structured-mode CloudEvent and checks its envelope as
// CloudEvents 1.0 does: specversion, id, source and type are required;
// time, dataschema and datacontenttype are optional (a datacontenttype
// present must say JSON, IsJSONMediaType); unknown attributes are ignored.
// Greenroom also needs data.
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
	case ev.Source == "":
		return Event{}, fmt.Errorf("%w: missing source", ErrMalformed)
	case ev.Type == "":
		return Event{}, fmt.Errorf("%w: missing type", ErrMalformed)
	case ev.DataContentType != "" && !IsJSONMediaType(ev.DataContentType):
		return Event{}, fmt.Errorf("%w: datacontenttype %q is not JSON", ErrMalformed, ev.DataContentType)
	case len(ev.Data) == 0 || string(ev.Data) == "null":
		return Event{}, fmt.Errorf("%w: missing data", ErrMalformed)
	}
	return ev, nil
}

// DecodeData unmarshals the payload into v. Fields v does not know are
// ignored, so that a writer one version ahead (a rolling upgrade that adds
// a field) is still understood; the schemas say what a writer sends.
func (e Event) DecodeData(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("%w: %s data: %v", ErrMalformed, e.Type, err)
	}
	return nil
}

// RequestIDMaxLength is the longest request_id the schemas allow.
const RequestIDMaxLength = 200

// ReadRequestID reads data.request_id from an encoded event that may be
// invalid in every other way, so that a malformed request can still be
// answered. It returns "" unless the event is a JSON object whose data is an
// object with a request_id string of 1 to RequestIDMaxLength characters.
func ReadRequestID(raw []byte) string {
	var ev struct {
		Data struct {
			RequestID any `json:"request_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		// A field of the wrong type elsewhere fails Unmarshal but still
		// fills what it could: only a syntax error leaves nothing.
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return ""
		}
	}
	id, _ := ev.Data.RequestID.(string)
	if id == "" || utf8.RuneCountInString(id) > RequestIDMaxLength || !utf8.ValidString(id) {
		return ""
	}
	return id
}

// Marshal encodes the event as JSON.
func (e Event) Marshal() ([]byte, error) { return json.Marshal(e) }
