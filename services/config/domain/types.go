package domain

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"fmt"

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
