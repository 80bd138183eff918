package domain

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// Optional is a request body field that may be absent, null or a value.
// PATCH needs all three: absent keeps the current value, null clears a
// nullable reference, a value sets it. Create bodies use it too, so that a
// missing required field and a null one are reported as such.
type Optional[T any] struct {
	Set   bool // the field is in the body
	Null  bool // the field is in the body as null
	Value T
}

// Some returns an Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: v} }

// UnmarshalJSON records that the field was present. encoding/json calls it
// for null too, which a pointer field could not tell from absent. A type
// error from the value keeps its *json.UnmarshalTypeError form; Decode
// finds the field that holds it.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(b, []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

func (Optional[T]) valueType() reflect.Type { return reflect.TypeFor[T]() }

// Has reports whether the body gave a value (present and not null).
func (o Optional[T]) Has() bool { return o.Set && !o.Null }

// Or returns the value, or def when the body gave none.
func (o Optional[T]) Or(def T) T {
	if o.Has() {
		return o.Value
	}
	return def
}

// Ptr returns a pointer to the value, or nil when the body gave none.
func (o Optional[T]) Ptr() *T {
	if o.Has() {
		v := o.Value
		return &v
	}
	return nil
}

// setIfPresent copies the value to *dst when the body gave one.
func setIfPresent[T any](dst *T, o Optional[T]) {
	if o.Has() {
		*dst = o.Value
	}
}
