package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
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
		var mistyped *json.UnmarshalTypeError
		if errors.As(err, &mistyped) && isObject(data) {
			// Which field holds it is found here rather than read off
			// the error: encoding/json names the field only when it
			// decodes the value itself, not when a field's own
			// UnmarshalJSON (Optional's) does, and from Go 1.27 not
			// even then for Optional fields.
			if fe, ok := locate(data, reflect.TypeOf(v), prefix); ok && fe.Field != prefix {
				return FieldErrors{fe}
			}
		}
		return FieldErrors{decodeError(err, prefix)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return FieldErrors{{Field: prefix, Detail: "unexpected data after the JSON object"}}
	}
	if field, ok := unstorable(data, prefix); ok {
		return FieldErrors{{Field: field, Detail: `holds a NUL character (\u0000) or a lone UTF-16 surrogate escape, which no text or JSON column can store`}}
	}
	return nil
}

// unstorable finds the first string, key or value, of a valid JSON document
// that PostgreSQL would refuse: text cannot hold NUL, and jsonb refuses
// the escape \u0000 and a surrogate escape that is not half of a pair
// (which Go reads as U+FFFD, but keeps in a json.RawMessage). It returns
// the field holding it, a dotted path below prefix ("run_config.environment.A",
// "labels[2]").
func unstorable(data []byte, prefix string) (string, bool) {
	if !bytes.Contains(data, []byte(`\u`)) {
		return "", false // neither can be written without an escape
	}
	type level struct {
		object bool
		key    string // the current key of an object
		index  int    // the next index of an array
		want   bool   // an object expects a key next
	}
	var stack []level
	path := func(last string) string {
		p := prefix
		for i, l := range stack {
			switch {
			case l.object && i == len(stack)-1 && last != "":
				p = join(p, last)
			case l.object:
				p = join(p, l.key)
			default:
				p = fmt.Sprintf("%s[%d]", p, l.index-1)
			}
		}
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		raw := data[start:dec.InputOffset()]
		var top *level
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.want
		if _, ok := tok.(json.Delim); !ok && top != nil && !top.object {
			top.index++
		}
		if s, ok := tok.(string); ok && badString(s, raw) {
			if isKey {
				return path(strings.ReplaceAll(s, "\x00", `\u0000`)), true
			}
			return path(""), true
		}
		switch {
		case tok == json.Delim('{') || tok == json.Delim('['):
			if top != nil && !top.object {
				top.index++
			}
			if top != nil && top.object {
				top.want = true
			}
			stack = append(stack, level{object: tok == json.Delim('{'), want: true})
		case tok == json.Delim('}') || tok == json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].want = true
			}
		case isKey:
			top.key, top.want = tok.(string), false
		case top != nil && top.object:
			top.want = true
		}
	}
}

// badString reports whether a decoded string s, written as raw, holds NUL
// or a lone surrogate escape.
func badString(s string, raw []byte) bool {
	if strings.IndexByte(s, 0) >= 0 {
		return true
	}
	if !strings.ContainsRune(s, utf8.RuneError) {
		return false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++
		if i >= len(raw) || raw[i] != 'u' || i+4 >= len(raw) {
			continue
		}
		r := hex4(raw[i+1 : i+5])
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low half first
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return true
			}
			if lo := hex4(raw[i+3 : i+7]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

func hex4(b []byte) rune {
	n, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return -1
	}
	return rune(n)
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
		name = strings.TrimSuffix(name, `"`)
		if name == "" {
			// The empty key is a field too: named, it is not taken for
			// a problem with the body as a whole.
			name = `""`
		}
		return FieldError{Field: join(prefix, name), Detail: "is not a known field"}
	}
	return FieldError{Field: prefix, Detail: "malformed JSON: " + err.Error()}
}

// isObject reports whether data is a JSON object (after leading space).
func isObject(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '{'
}

// optionalField is an Optional[T] seen through reflection.
type optionalField interface{ valueType() reflect.Type }

// locate decodes data into a value of type t again, part by part, to find
// the innermost value of the wrong type: its path below path (object
// members joined with ".", array elements as "[i]") and what it should
// have been. It reports false when data holds no such value.
func locate(data []byte, t reflect.Type, path string) (FieldError, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if o, ok := reflect.New(t).Interface().(optionalField); ok {
		t = o.valueType()
	}
	err := json.Unmarshal(data, reflect.New(t).Interface())
	var mistyped *json.UnmarshalTypeError
	if !errors.As(err, &mistyped) {
		return FieldError{}, false
	}
	var inner []member
	switch t.Kind() {
	case reflect.Struct:
		fields := jsonFields(t)
		for _, m := range members(data) {
			if f, ok := fields.lookup(m.key); ok {
				inner = append(inner, member{key: join(path, m.key), value: m.value, typ: f})
			}
		}
	case reflect.Map:
		for _, m := range members(data) {
			inner = append(inner, member{key: join(path, m.key), value: m.value, typ: t.Elem()})
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 { // []byte is a base64 string
			for i, v := range elements(data) {
				inner = append(inner, member{key: fmt.Sprintf("%s[%d]", path, i), value: v, typ: t.Elem()})
			}
		}
	}
	for _, m := range inner {
		if fe, ok := locate(m.value, m.typ, m.key); ok {
			return fe, true
		}
	}
	mistyped.Type = t
	return FieldError{Field: path, Detail: typeDetail(mistyped)}, true
}

// member is one value inside an object or array, with its path and the
// Go type it decodes into.
type member struct {
	key   string
	value json.RawMessage
	typ   reflect.Type
}

// members lists an object's members in document order (nil for anything
// but an object).
func members(data []byte) []member {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return out
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return out
		}
		out = append(out, member{key: key, value: v})
	}
	return out
}

// elements lists an array's elements (nil for anything but an array).
func elements(data []byte) []json.RawMessage {
	var out []json.RawMessage
	if json.Unmarshal(data, &out) != nil {
		return nil
	}
	return out
}

// fieldTypes maps a struct's JSON member names to its fields' types.
type fieldTypes map[string]reflect.Type

// jsonFields lists the members encoding/json decodes into t: exported
// fields by their json tag name (else their Go name), "-" left out,
// embedded structs' fields promoted.
func jsonFields(t reflect.Type) fieldTypes {
	out := fieldTypes{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" && f.Tag.Get("json") == "-":
			continue
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			for k, v := range jsonFields(f.Type) {
				if _, taken := out[k]; !taken {
					out[k] = v
				}
			}
			continue
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// lookup finds a member's field as encoding/json does: the exact name,
// else one that matches without regard to case.
func (fs fieldTypes) lookup(key string) (reflect.Type, bool) {
	if t, ok := fs[key]; ok {
		return t, true
	}
	for name, t := range fs {
		if strings.EqualFold(name, key) {
			return t, true
		}
	}
	return nil, false
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
