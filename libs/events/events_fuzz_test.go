package events_test

// Fuzz tests of every decoder a consumer runs on a message from the bus
// (issue 15, "bad input"): the CloudEvents envelope (Decode), each type's
// payload (DecodeData), the reader's schema check (ValidateReceived) and
// ReadRequestID, which answers requests that are invalid in every other
// way. `make fuzz` runs each for FUZZTIME; the seeds (and any crasher kept
// under testdata/fuzz) run with the other tests.

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// fuzzSeeds are encoded events for every corpus: each type's sample as a
// writer sends it, the same without the optional attributes, and a handful
// of broken ones.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	for _, typ := range events.Types {
		ev, err := events.NewWithID("0192f3a4-5b6c-7d8e-9f01-23456789ab00", source, typ, samples[typ])
		if err != nil {
			f.Fatal(err)
		}
		raw, err := ev.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, raw)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			f.Fatal(err)
		}
		for _, k := range []string{"time", "dataschema", "datacontenttype"} {
			delete(m, k)
		}
		m["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		bare, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, bare)
	}
	return append(out,
		[]byte(``), []byte(`null`), []byte(`[]`), []byte(`"x"`), []byte(`{}`),
		[]byte(`{"specversion":"1.0","id":"1","source":"s","type":"greenroom.session.requested","data":null}`),
		[]byte(`{"specversion":"1.0","id":"1","source":"s","type":"greenroom.session.requested","datacontenttype":"text/plain","data":{}}`),
		[]byte(`{"specversion":"1.0","id":"1","source":"s","type":"greenroom.session.requested","time":"2024-13-01T00:00:00Z","data":{"request_id":"r"}}`),
		[]byte(`{"specversion":"1.0","id":"1","source":"s","type":"greenroom.session.requested","data":{"request_id":7,"user":"alice"}}`),
		[]byte(`{"specversion":"0.3","id":1,"data":{"request_id":"r-1","user":["x"]}}`),
		[]byte(`{"data":{"request_id":"\ud800"}}`),
		[]byte(`{"type":"greenroom.staging.shortfall","data":{"desired":1e400}}`),
		[]byte(`{"specversion":"1.0","id":"1","source":"s","type":"greenroom.dead","data":{"stream_sequence":18446744073709551616}}`),
	)
}

// sameEvent reports whether two decoded events are the same event; data is
// compared as JSON values, since encoding compacts it.
func sameEvent(t *testing.T, a, b events.Event) {
	t.Helper()
	if a.SpecVersion != b.SpecVersion || a.ID != b.ID || a.Source != b.Source || a.Type != b.Type ||
		!a.Time.Equal(b.Time) || a.DataSchema != b.DataSchema || a.DataContentType != b.DataContentType ||
		a.Subject != b.Subject {
		t.Fatalf("the envelope changed in a round trip:\n%+v\n%+v", a, b)
	}
	var da, db any
	if err := json.Unmarshal(a.Data, &da); err != nil {
		t.Fatalf("decoded data is not JSON: %v", err)
	}
	if err := json.Unmarshal(b.Data, &db); err != nil {
		t.Fatalf("re-decoded data is not JSON: %v", err)
	}
	if !reflect.DeepEqual(da, db) {
		t.Fatalf("data changed in a round trip:\n%s\n%s", a.Data, b.Data)
	}
}

// FuzzDecode: Decode never panics, and an event it accepts encodes to one
// it accepts again, unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := events.Decode(raw)
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Decode error does not match ErrMalformed: %v", err)
			}
			return
		}
		again, err := ev.Marshal()
		if err != nil {
			t.Fatalf("an accepted event does not encode: %v\n%q", err, raw)
		}
		ev2, err := events.Decode(again)
		if err != nil {
			t.Fatalf("an accepted event, re-encoded, is refused: %v\n%q\n%q", err, raw, again)
		}
		sameEvent(t, ev, ev2)
		if id := events.ReadRequestID(raw); id != events.ReadRequestID(again) {
			t.Fatalf("ReadRequestID changed in a round trip: %q, then %q", id, events.ReadRequestID(again))
		}
	})
}

// payloadOf is a new value of the payload type of an event type.
func payloadOf(typ string) any {
	s, ok := samples[typ]
	if !ok {
		return nil
	}
	return reflect.New(reflect.TypeOf(s)).Interface()
}

// FuzzDecodeData: DecodeData into each type's payload never panics, and a
// payload it decoded encodes and decodes to the same value.
func FuzzDecodeData(f *testing.F) {
	for i, typ := range events.Types {
		b, err := json.Marshal(samples[typ])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
		f.Add(uint8(i), []byte(`{"request_id":"r","added_in_v2":[1,{"x":null}],"zones":null}`))
	}
	f.Add(uint8(0), []byte(`{"request_id":1}`))
	f.Add(uint8(12), []byte(`{"desired":1.5,"current":-1}`))
	f.Add(uint8(13), []byte(`{"stream_sequence":-1,"num_delivered":1e3}`))
	f.Add(uint8(2), []byte(`{"zones":"eu"}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		typ := events.Types[int(which)%len(events.Types)]
		ev := events.Event{Type: typ, Data: data}
		v := payloadOf(typ)
		if err := ev.DecodeData(v); err != nil {
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("DecodeData error does not match ErrMalformed: %v", err)
			}
			return
		}
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("a decoded %s payload does not encode: %v", typ, err)
		}
		w := payloadOf(typ)
		if err := (events.Event{Type: typ, Data: enc}).DecodeData(w); err != nil {
			t.Fatalf("a decoded %s payload, re-encoded, is refused: %v\n%s", typ, err, enc)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("%s payload changed in a round trip:\n%+v\n%+v", typ, v, w)
		}
	})
}

// FuzzValidateReceived: the reader's schema check never panics; what it
// accepts, the consumer's Decode and the handler's DecodeData accept too
// (else a message the schemas call valid would still be dead-lettered);
// and a refused JSON object of a known type names the fields at fault.
func FuzzValidateReceived(f *testing.F) {
	v, err := events.NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		verr := v.ValidateReceived(raw)
		if verr != nil {
			if !errors.Is(verr, events.ErrSchema) || !errors.Is(verr, events.ErrMalformed) {
				t.Fatalf("ValidateReceived error matches neither ErrSchema nor ErrMalformed: %v", verr)
			}
			var obj map[string]any
			if json.Unmarshal(raw, &obj) == nil && obj != nil {
				var se *events.SchemaError
				if !errors.As(verr, &se) || len(se.Problems) == 0 {
					t.Fatalf("refusing a JSON object, ValidateReceived names no field: %v", verr)
				}
			}
			return
		}
		ev, err := events.Decode(raw)
		if err != nil {
			t.Fatalf("ValidateReceived accepts what Decode refuses: %v\n%q", err, raw)
		}
		p := payloadOf(ev.Type)
		if p == nil {
			t.Fatalf("ValidateReceived accepts an event of unknown type %q", ev.Type)
		}
		if err := ev.DecodeData(p); err != nil {
			t.Fatalf("ValidateReceived accepts data DecodeData refuses: %v\n%q", err, raw)
		}
	})
}

// FuzzReadRequestID: ReadRequestID never panics and returns "" or a valid
// request id; when the whole event decodes, it is the payload's
// request_id.
func FuzzReadRequestID(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"data":{"request_id":"` + string(bytes.Repeat([]byte("é"), events.RequestIDMaxLength)) + `"}}`))
	f.Add([]byte(`{"data":{"request_id":"` + string(bytes.Repeat([]byte("x"), events.RequestIDMaxLength+1)) + `"}}`))
	f.Add([]byte(`{"data":{"request_id":"r-1"},"id":7}`))
	f.Add([]byte(`{"data":{"request_id":"r-1"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		id := events.ReadRequestID(raw)
		if id != "" && (!utf8.ValidString(id) || utf8.RuneCountInString(id) > events.RequestIDMaxLength) {
			t.Fatalf("ReadRequestID returned an invalid id %q", id)
		}
		ev, err := events.Decode(raw)
		if err != nil {
			return
		}
		var p struct {
			RequestID string `json:"request_id"`
		}
		if ev.DecodeData(&p) != nil {
			return
		}
		if p.RequestID != "" && utf8.ValidString(p.RequestID) && utf8.RuneCountInString(p.RequestID) <= events.RequestIDMaxLength && id != p.RequestID {
			t.Fatalf("ReadRequestID = %q, the decoded payload says %q\n%q", id, p.RequestID, raw)
		}
	})
}
