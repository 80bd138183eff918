package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Decode reads the JSON object in data into v strictly: an unknown field, a
// value of the wrong type and anything after the object are errors. Each
// error names its field, prefixed with prefix (the path of a nested object,
// "" for a request body); a problem with the document as a whole has the
// field prefix alone. encoding/json stops at the first unknown or mistyped
// field, so at most one error is reported.
func Decode(data []byte, v any, prefix string) FieldErrors {
	if len(bytes.TrimSpace(data)) == 0 {
		return FieldErrors{{Field: prefix, Detail: "a JSON object is required"}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return FieldErrors{decodeError(err, prefix)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return FieldErrors{{Field: prefix, Detail: "unexpected data after the JSON object"}}
	}
	return nil
}

func decodeError(err error, prefix string) FieldError {
	var (
		syntax   *json.SyntaxError
		mistyped *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return FieldError{Field: prefix, Detail: fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return FieldError{Field: prefix, Detail: "malformed JSON: unexpected end of input"}
	case errors.As(err, &mistyped) && mistyped.Field == "":
		return FieldError{Field: prefix, Detail: "must be a JSON object, not " + mistyped.Value}
	case errors.As(err, &mistyped):
		return FieldError{Field: join(prefix, mistyped.Field), Detail: typeDetail(mistyped)}
	}
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		return FieldError{Field: join(prefix, strings.TrimSuffix(name, `"`)), Detail: "is not a known field"}
	}
	return FieldError{Field: prefix, Detail: "malformed JSON: " + err.Error()}
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// typeDetail says what a mistyped value should have been, in JSON's words.
func typeDetail(e *json.UnmarshalTypeError) string {
	want := jsonType(e.Type)
	if want == "an integer" {
		if n, ok := strings.CutPrefix(e.Value, "number "); ok && !strings.ContainsAny(n, ".eE") {
			return fmt.Sprintf("%s is out of range", n)
		}
	}
	return fmt.Sprintf("must be %s, not %s", want, e.Value)
}

func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}
