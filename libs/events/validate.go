package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/greenroom-dev/greenroom/schemas"
)

// ErrSchema wraps every failure of Validator: the event does not match the
// JSON Schema of its type, or has no known type. It also matches
// ErrMalformed, since such a message can never be handled.
var ErrSchema = fmt.Errorf("%w: does not match its schema", ErrMalformed)

// SchemaBaseURL is the base of every event schema's $id; the schema of a type
// is SchemaBaseURL + SchemaName(type) + ".json". The dataschema URN
// (DataSchemaURI) names the payload's contract and version but is not a URL a
// schema can be resolved from.
const SchemaBaseURL = "https://greenroom.invalid/schemas/events/"

// Validator checks whole CloudEvents against the embedded schemas in
// schemas/events, with format assertions (uuid, date-time, uri) on, in two
// modes. Validate is the writer's check: an event exactly as the schemas
// describe it, every attribute Greenroom sets present and no field the
// schema does not name (publishers refuse anything else, and tests check
// every published event with it). ValidateReceived is the reader's check
// (consumers): the same schemas, but, as CloudEvents 1.0 and a rolling
// upgrade need, only specversion, id, source and type are required of the
// envelope (time, dataschema, datacontenttype may be left out; when present
// they must still be right), and unknown fields are ignored, in the
// envelope and at any depth of data. It is immutable after NewValidator and
// safe for concurrent use.
type Validator struct {
	byType   map[string]*jsonschema.Schema
	received map[string]*jsonschema.Schema
}

// NewValidator compiles the schema of every type in Types from
// schemas.Events, as written and relaxed for readers. A type without a
// schema, or a schema that does not pin its type and dataschema, is an
// error.
func NewValidator() (*Validator, error) {
	docs := make(map[string][]byte, len(Types))
	for _, t := range Types {
		name := SchemaName(t) + ".json"
		b, err := fs.ReadFile(schemas.Events, "events/"+name)
		if err != nil {
			return nil, fmt.Errorf("schema of %s: %w", t, err)
		}
		docs[t] = b
	}
	strict, err := compileSchemas(docs, nil)
	if err != nil {
		return nil, err
	}
	received, err := compileSchemas(docs, relaxForReaders)
	if err != nil {
		return nil, err
	}
	return &Validator{byType: strict, received: received}, nil
}

// compileSchemas compiles one schema per type from docs, each changed by
// edit first when set.
func compileSchemas(docs map[string][]byte, edit func(doc map[string]any)) (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	urls := make(map[string]string, len(Types))
	for _, t := range Types {
		name := SchemaName(t) + ".json"
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(docs[t]))
		if err != nil {
			return nil, fmt.Errorf("schema of %s: events/%s: %w", t, name, err)
		}
		if m, ok := doc.(map[string]any); ok && edit != nil {
			edit(m)
		}
		url := SchemaBaseURL + name
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("schema of %s: %w", t, err)
		}
		urls[t] = url
	}
	byType := make(map[string]*jsonschema.Schema, len(Types))
	for _, t := range Types {
		sch, err := c.Compile(urls[t])
		if err != nil {
			return nil, fmt.Errorf("compiling schema of %s: %w", t, err)
		}
		if err := pinned(sch, "type", t); err != nil {
			return nil, err
		}
		if err := pinned(sch, "dataschema", DataSchemaURI(t)); err != nil {
			return nil, err
		}
		byType[t] = sch
	}
	return byType, nil
}

// envelopeRequired are the attributes CloudEvents 1.0 requires, and data,
// without which no Greenroom event means anything.
var envelopeRequired = map[string]bool{"specversion": true, "id": true, "source": true, "type": true, "data": true}

// jsonMediaType matches the datacontenttype values whose data is JSON:
// application/json, text/json and any application/...+json, with or without
// parameters (CloudEvents' JSON format carries such data as a JSON value).
const jsonMediaType = `(?i)^(application/json|text/json|application/[a-z0-9!#$&^_.+-]+\+json)[ \t]*(;.*)?$`

var jsonMediaTypeRE = regexp.MustCompile(jsonMediaType)

// IsJSONMediaType reports whether a datacontenttype says the data is JSON.
func IsJSONMediaType(ct string) bool { return jsonMediaTypeRE.MatchString(ct) }

// relaxForReaders turns a writer's schema (doc, an event schema as in
// schemas/events) into what a reader accepts: the envelope requires only
// CloudEvents' own attributes and data; any datacontenttype that says JSON
// is accepted; and no object, the envelope or any object in data, refuses
// a property its schema does not name.
func relaxForReaders(doc map[string]any) {
	if req, ok := doc["required"].([]any); ok {
		kept := req[:0:0]
		for _, r := range req {
			if name, _ := r.(string); envelopeRequired[name] {
				kept = append(kept, r)
			}
		}
		doc["required"] = kept
	}
	// Extension attributes of any name and value are ignored.
	delete(doc, "propertyNames")
	delete(doc, "additionalProperties")
	if props, ok := doc["properties"].(map[string]any); ok {
		if _, ok := props["datacontenttype"]; ok {
			props["datacontenttype"] = map[string]any{"type": "string", "pattern": jsonMediaType}
		}
	}
	allowUnknownProperties(doc)
}

// allowUnknownProperties removes every "additionalProperties": false
// (and "unevaluatedProperties": false) from a schema and its subschemas.
func allowUnknownProperties(v any) {
	switch s := v.(type) {
	case map[string]any:
		for _, kw := range []string{"additionalProperties", "unevaluatedProperties"} {
			if b, ok := s[kw].(bool); ok && !b {
				delete(s, kw)
			}
		}
		for k, sub := range s {
			switch k {
			case "const", "enum", "default", "examples":
				// Values, not schemas.
			default:
				allowUnknownProperties(sub)
			}
		}
	case []any:
		for _, sub := range s {
			allowUnknownProperties(sub)
		}
	}
}

// pinned checks that sch requires property prop to equal want, so that a
// schema file can never silently validate another type's events.
func pinned(sch *jsonschema.Schema, prop, want string) error {
	p := sch.Properties[prop]
	if p == nil || p.Const == nil || *p.Const != any(want) {
		return fmt.Errorf("schema %s: %s must be const %q", sch.Location, prop, want)
	}
	return nil
}

// Validate checks a structured-mode CloudEvent as a writer must send it: it
// reads its type, picks that type's schema and validates the whole event.
// Every error is a *SchemaError, wraps ErrSchema and names the type and the
// failing locations.
func (v *Validator) Validate(raw []byte) error {
	return validate(v.byType, raw)
}

// ValidateReceived checks a structured-mode CloudEvent as a reader accepts
// it (see Validator): any spec-valid CloudEvent of a known type whose data
// matches its schema, ignoring unknown fields. Errors are as Validate's.
func (v *Validator) ValidateReceived(raw []byte) error {
	return validate(v.received, raw)
}

func validate(byType map[string]*jsonschema.Schema, raw []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%w: not JSON: %v", ErrSchema, err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: not a JSON object", ErrSchema)
	}
	t, ok := obj["type"].(string)
	if !ok {
		return &SchemaError{Problems: []Problem{{Field: "type", Message: "missing or not a string"}}}
	}
	sch, ok := byType[t]
	if !ok {
		return &SchemaError{Type: t, Problems: []Problem{{Field: "type", Message: fmt.Sprintf("unknown event type %q", t)}}}
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return fmt.Errorf("%w: %s: %v", ErrSchema, t, err)
		}
		return newSchemaError(t, ve)
	}
	return nil
}

// SchemaError is an event that does not match the schema of its type. It
// wraps ErrSchema (and so ErrMalformed).
type SchemaError struct {
	// Type is the event's type.
	Type string
	// Problems are the failures, one per field, sorted by field.
	Problems []Problem
}

// Problem is one failure of a SchemaError.
type Problem struct {
	// Field names the offending attribute or data field as a dotted path
	// from the event's root: "source", "data.user", "data.zones.0"; a
	// missing field is named as if present. Empty for the event as a whole.
	Field string
	// Message says what is wrong, e.g. "missing property 'user'".
	Message string
}

func (e *SchemaError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = "at '" + pointer(p.Field) + "': " + p.Message
	}
	if e.Type == "" {
		return fmt.Sprintf("%v: %s", ErrSchema, strings.Join(msgs, "; "))
	}
	return fmt.Sprintf("%v: %s: %s", ErrSchema, e.Type, strings.Join(msgs, "; "))
}

// Unwrap makes errors.Is(err, ErrSchema) and ErrMalformed true.
func (e *SchemaError) Unwrap() error { return ErrSchema }

// Fields lists the offending fields, without repeats, in order.
func (e *SchemaError) Fields() []string {
	var out []string
	for _, p := range e.Problems {
		if len(out) == 0 || out[len(out)-1] != p.Field {
			out = append(out, p.Field)
		}
	}
	return out
}

func pointer(field string) string {
	if field == "" {
		return ""
	}
	return "/" + strings.ReplaceAll(field, ".", "/")
}

// ValidateEvent encodes ev and validates it; use it before publishing.
func (v *Validator) ValidateEvent(ev Event) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("%w: %s: encoding: %v", ErrSchema, ev.Type, err)
	}
	return v.Validate(raw)
}

// newSchemaError lists the leaf failures of a validation error, each with
// the field it is about, sorted so messages are stable.
func newSchemaError(eventType string, ve *jsonschema.ValidationError) *SchemaError {
	e := &SchemaError{Type: eventType}
	var walk func(v *jsonschema.ValidationError)
	walk = func(v *jsonschema.ValidationError) {
		if len(v.Causes) > 0 {
			for _, c := range v.Causes {
				walk(c)
			}
			return
		}
		// A leaf's Error() is "at '<JSON pointer>': <what is wrong>".
		msg := v.Error()
		if _, rest, ok := strings.Cut(msg, "': "); ok && strings.HasPrefix(msg, "at '") {
			msg = rest
		}
		at := strings.Join(v.InstanceLocation, ".")
		if req, ok := v.ErrorKind.(*kind.Required); ok && len(req.Missing) > 0 {
			for _, name := range req.Missing {
				e.Problems = append(e.Problems, Problem{Field: join(at, name), Message: "missing property '" + name + "'"})
			}
			return
		}
		if extra, ok := v.ErrorKind.(*kind.AdditionalProperties); ok && len(extra.Properties) > 0 {
			for _, name := range extra.Properties {
				e.Problems = append(e.Problems, Problem{Field: join(at, name), Message: "property '" + name + "' not allowed"})
			}
			return
		}
		e.Problems = append(e.Problems, Problem{Field: at, Message: msg})
	}
	walk(ve)
	sort.SliceStable(e.Problems, func(i, j int) bool {
		a, b := e.Problems[i], e.Problems[j]
		return a.Field < b.Field || (a.Field == b.Field && a.Message < b.Message)
	})
	return e
}

func join(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}
