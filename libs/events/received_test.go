package events_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// roundTrippable keeps a dead letter's stream_sequence within what
// mutated's float64 round trip keeps exact.
func roundTrippable(typ string, data map[string]any) {
	if typ == events.TypeDeadLetter {
		data["stream_sequence"] = 42
	}
}

// minimal is a valid event of type typ as a CloudEvents SDK or `nats pub`
// may send it: only the attributes CloudEvents 1.0 requires, and data.
func minimal(t *testing.T, typ string, f func(ev, data map[string]any)) []byte {
	t.Helper()
	return mutated(t, typ, func(ev, data map[string]any) {
		for _, optional := range []string{"time", "dataschema", "datacontenttype", "subject"} {
			delete(ev, optional)
		}
		roundTrippable(typ, data)
		if f != nil {
			f(ev, data)
		}
	})
}

// Readers accept every spec-valid CloudEvent whose data matches its schema
// (issue 15): without the optional attributes, and with fields a newer
// writer added, in the envelope and in data. Writers are still held to
// the schemas as written.
func TestReceivedEventsNeedOnlyTheRequiredAttributesAndIgnoreUnknownFields(t *testing.T) {
	v := newValidator(t)
	for _, typ := range events.Types {
		t.Run(typ, func(t *testing.T) {
			bare := minimal(t, typ, nil)
			if err := v.ValidateReceived(bare); err != nil {
				t.Errorf("ValidateReceived without the optional attributes: %v\n%s", err, bare)
			}
			if err := v.Validate(bare); !errors.Is(err, events.ErrSchema) {
				t.Errorf("Validate (a writer's check) must still want every attribute, got %v", err)
			}
			if _, err := events.Decode(bare); err != nil {
				t.Errorf("Decode without the optional attributes: %v", err)
			}
			newer := mutated(t, typ, func(ev, data map[string]any) {
				ev["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
				ev["Added_In_V2"] = map[string]any{"x": 1}
				data["added_in_v2"] = []any{1, "two"}
				roundTrippable(typ, data)
			})
			if err := v.ValidateReceived(newer); err != nil {
				t.Errorf("ValidateReceived with unknown fields: %v", err)
			}
			var se *events.SchemaError
			if err := v.Validate(newer); !errors.As(err, &se) || !slices.Contains(se.Fields(), "data.added_in_v2") {
				t.Errorf("Validate must refuse an unknown data field and name it, got %v", err)
			}
		})
	}
}

func TestReceivedEventsAcceptJSONMediaTypes(t *testing.T) {
	v := newValidator(t)
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "application/cloudevents+json", "text/json"} {
		raw := minimal(t, events.TypeSessionRequested, func(ev, _ map[string]any) { ev["datacontenttype"] = ct })
		if err := v.ValidateReceived(raw); err != nil {
			t.Errorf("%q: ValidateReceived: %v", ct, err)
		}
		if _, err := events.Decode(raw); err != nil {
			t.Errorf("%q: Decode: %v", ct, err)
		}
	}
	for _, ct := range []string{"text/plain", "application/jsonx", "application/octet-stream", ""} {
		if events.IsJSONMediaType(ct) {
			t.Errorf("IsJSONMediaType(%q) = true", ct)
		}
	}
}

// What a reader refuses is named field by field, so that an invalid
// request can be answered with the field (ReasonInvalidRequest).
func TestReceivedEventsStillCheckWhatIsThere(t *testing.T) {
	v := newValidator(t)
	cases := []struct {
		rule  string
		f     func(ev, data map[string]any)
		field string
	}{
		{"missing user", func(_, d map[string]any) { delete(d, "user") }, "data.user"},
		{"user not a string", func(_, d map[string]any) { d["user"] = 7 }, "data.user"},
		{"empty zone", func(_, d map[string]any) { d["zone"] = "" }, "data.zone"},
		{"missing source", func(e, _ map[string]any) { delete(e, "source") }, "source"},
		{"wrong specversion", func(e, _ map[string]any) { e["specversion"] = "0.3" }, "specversion"},
		{"time not a date-time", func(e, _ map[string]any) { e["time"] = "yesterday" }, "time"},
		{"dataschema of another contract", func(e, _ map[string]any) { e["dataschema"] = "urn:greenroom:schema:session.requested:2" }, "dataschema"},
		{"data not JSON", func(e, _ map[string]any) { e["datacontenttype"] = "text/plain" }, "datacontenttype"},
		{"data not an object", func(e, _ map[string]any) { e["data"] = "x" }, "data"},
		{"missing data", func(e, _ map[string]any) { delete(e, "data") }, "data"},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			err := v.ValidateReceived(minimal(t, events.TypeSessionRequested, tc.f))
			var se *events.SchemaError
			if !errors.As(err, &se) || !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("ValidateReceived = %v, want a *SchemaError wrapping ErrMalformed", err)
			}
			if !slices.Contains(se.Fields(), tc.field) || se.Type != events.TypeSessionRequested {
				t.Errorf("fields %q of %s, want %q (%v)", se.Fields(), se.Type, tc.field, err)
			}
		})
	}
}

func TestReadRequestIDOfAnInvalidRequest(t *testing.T) {
	cases := map[string]struct {
		raw  string
		want string
	}{
		"valid":                  {string(sample2(t)), requestID},
		"other fields mistyped":  {`{"specversion":1,"time":"yesterday","data":{"request_id":"r-1","user":1,"zone":null}}`, "r-1"},
		"not JSON":               {`{"data":{"request_id":"r-1"`, ""},
		"no data":                {`{"specversion":"1.0"}`, ""},
		"data not an object":     {`{"data":"r-1"}`, ""},
		"request_id not string":  {`{"data":{"request_id":42}}`, ""},
		"empty request_id":       {`{"data":{"request_id":""}}`, ""},
		"request_id too long":    {`{"data":{"request_id":"` + strings.Repeat("r", events.RequestIDMaxLength+1) + `"}}`, ""},
		"request_id at its most": {`{"data":{"request_id":"` + strings.Repeat("é", events.RequestIDMaxLength) + `"}}`, strings.Repeat("é", events.RequestIDMaxLength)},
		"an array":               {`[{"data":{"request_id":"r-1"}}]`, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := events.ReadRequestID([]byte(tc.raw)); got != tc.want {
				t.Errorf("ReadRequestID = %q, want %q", got, tc.want)
			}
		})
	}
}

func sample2(t *testing.T) []byte {
	raw, err := json.Marshal(sample(t, events.TypeSessionRequested))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
