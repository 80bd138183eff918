package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

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
// schemas/events, with format assertions (uuid, date-time, uri) on. It is
// immutable after NewValidator and safe for concurrent use.
type Validator struct {
	byType map[string]*jsonschema.Schema
}

// NewValidator compiles the schema of every type in Types from
// schemas.Events. A type without a schema, or a schema that does not pin its
// type and dataschema, is an error.
func NewValidator() (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	urls := make(map[string]string, len(Types))
	for _, t := range Types {
		name := SchemaName(t) + ".json"
		b, err := fs.ReadFile(schemas.Events, "events/"+name)
		if err != nil {
			return nil, fmt.Errorf("schema of %s: %w", t, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema of %s: events/%s: %w", t, name, err)
		}
		url := SchemaBaseURL + name
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("schema of %s: %w", t, err)
		}
		urls[t] = url
	}
	v := &Validator{byType: make(map[string]*jsonschema.Schema, len(Types))}
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
		v.byType[t] = sch
	}
	return v, nil
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

// Validate checks a structured-mode CloudEvent: it reads its type, picks
// that type's schema and validates the whole event. Every error wraps
// ErrSchema and names the type and the failing locations.
func (v *Validator) Validate(raw []byte) error {
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
		return fmt.Errorf("%w: missing or non-string type", ErrSchema)
	}
	sch, ok := v.byType[t]
	if !ok {
		return fmt.Errorf("%w: unknown event type %q", ErrSchema, t)
	}
	if err := sch.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return fmt.Errorf("%w: %s: %v", ErrSchema, t, err)
		}
		return fmt.Errorf("%w: %s: %s", ErrSchema, t, describe(ve))
	}
	return nil
}

// ValidateEvent encodes ev and validates it; use it before publishing.
func (v *Validator) ValidateEvent(ev Event) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("%w: %s: encoding: %v", ErrSchema, ev.Type, err)
	}
	return v.Validate(raw)
}

// describe lists the leaf failures of a validation error, each as
// "at '<JSON pointer>': <what is wrong>", sorted so messages are stable.
func describe(ve *jsonschema.ValidationError) string {
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e.Error())
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Strings(leaves)
	return strings.Join(leaves, "; ")
}
