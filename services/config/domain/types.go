package domain

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lib/pq"
)

// Labels is a list of strings kept in a PostgreSQL text[] column (labels,
// include/exclude labels, a user's group names). It is never JSON null.
type Labels []string

// MarshalJSON writes an empty list as [] rather than null.
func (l Labels) MarshalJSON() ([]byte, error) {
	if l == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(l))
}

// Scan reads a text[] column.
func (l *Labels) Scan(src any) error {
	var a pq.StringArray
	if err := a.Scan(src); err != nil {
		return err
	}
	*l = Labels(a)
	if *l == nil {
		*l = Labels{}
	}
	return nil
}

// Value writes a text[] column; nil is the empty array, not NULL.
func (l Labels) Value() (driver.Value, error) {
	if l == nil {
		return "{}", nil
	}
	return pq.StringArray(l).Value()
}

// JSONObject is a free-form JSON object kept in a jsonb column (run
// configs, volume mappings, the Docker exec config). It is never JSON null.
type JSONObject json.RawMessage

// MarshalJSON writes the stored object, or {} when there is none.
func (o JSONObject) MarshalJSON() ([]byte, error) {
	if len(o) == 0 {
		return []byte("{}"), nil
	}
	return json.RawMessage(o).MarshalJSON()
}

// Scan reads a jsonb column.
func (o *JSONObject) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		*o = JSONObject(bytes.Clone(v))
	case string:
		*o = JSONObject(v)
	case nil:
		*o = nil
	default:
		return fmt.Errorf("cannot scan %T into a JSON object", src)
	}
	return nil
}

// Value writes a jsonb column. It is a string because lib/pq would send
// []byte as bytea, which jsonb does not accept.
func (o JSONObject) Value() (driver.Value, error) {
	if len(o) == 0 {
		return "{}", nil
	}
	return string(o), nil
}

// objectOf encodes a decoded body object for storage.
func objectOf(m map[string]json.RawMessage) JSONObject {
	if m == nil {
		return JSONObject("{}")
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Every value is a json.RawMessage the decoder already checked.
		panic(fmt.Sprintf("re-encoding a decoded JSON object: %v", err))
	}
	return JSONObject(b)
}

// StringMap is an object of strings kept in a jsonb column (a user's
// attributes). It is never JSON null.
type StringMap map[string]string

// MarshalJSON writes an empty map as {} rather than null.
func (m StringMap) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]string(m))
}

// Scan reads a jsonb column.
func (m *StringMap) Scan(src any) error {
	var raw []byte
	switch v := src.(type) {
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	case nil:
		*m = StringMap{}
		return nil
	default:
		return fmt.Errorf("cannot scan %T into a string map", src)
	}
	out := StringMap{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("decoding a string map: %w", err)
	}
	*m = out
	return nil
}

// Value writes a jsonb column (a string: see JSONObject.Value).
func (m StringMap) Value() (driver.Value, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]string(m))
	return string(b), err
}

// Duration is a length of time kept in a PostgreSQL interval column, read
// as nanoseconds, and written in the API as Go writes durations ("8h0m0s").
type Duration time.Duration

// MarshalJSON writes the duration as Go's time.Duration.String does.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// Scan reads a number of nanoseconds (an interval selected as
// EXTRACT(EPOCH …) × 10⁹).
func (d *Duration) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*d = Duration(v)
	case float64:
		*d = Duration(v)
	case []byte:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("cannot read %q as nanoseconds: %w", v, err)
		}
		*d = Duration(n)
	default:
		return fmt.Errorf("cannot scan %T into a duration", src)
	}
	return nil
}

// ParseDuration reads a duration of the API: Go's syntax ("8h", "30m",
// "90s"), greater than zero and a whole number of microseconds (what an
// interval column holds).
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a duration such as 8h, 30m or 90s", s)
	case d <= 0:
		return 0, fmt.Errorf("%q must be greater than 0 (null means no limit)", s)
	case d%time.Microsecond != 0:
		return 0, fmt.Errorf("%q must be a whole number of microseconds", s)
	}
	return d, nil
}

// checkDuration records a problem when the body's duration is malformed
// or not positive.
func checkDuration(errs *FieldErrors, field string, o Optional[string], p presence) {
	if present(errs, field, o, p) {
		if _, err := ParseDuration(o.Value); err != nil {
			errs.Add(field, "%s", err.Error())
		}
	}
}

// durationOf is the duration of a body field that checkDuration accepted:
// nil for null.
func durationOf(o Optional[string]) *Duration {
	if !o.Has() {
		return nil
	}
	d, err := ParseDuration(o.Value)
	if err != nil {
		// Validate refused it before anything is applied.
		panic(fmt.Sprintf("applying an unchecked duration: %v", err))
	}
	v := Duration(d)
	return &v
}
