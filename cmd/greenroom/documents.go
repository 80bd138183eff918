package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The document format of apply files and of `get -o yaml|json`: each
// resource is one mapping with its `kind` and the fields of the API's
// create body, references to other resources by name:
//
//	kind: zone
//	name: zone-a
//	allow_origin_domain: greenroom.localhost
//	---
//	kind: staging-config
//	zone: zone-a
//	workspace: demo
//	desired_sessions: 3
//
// A file is a YAML stream of such documents; a document may also be a list
// of them, so a JSON array of resources is a file too.

// resource is one configuration resource of a file or of the API.
type resource struct {
	Kind *kind
	// Fields are the resource's fields but kind, as JSON decodes them
	// (numbers are float64, objects map[string]any).
	Fields map[string]any
	// Source says where a resource of a file was written (FILE:LINE).
	Source string
}

// key is the resource's identity within its kind (see kind.keyOf).
func (r resource) key() string { return r.Kind.keyOf(r.Fields) }

// String names the resource as apply reports it: zone/zone-a.
func (r resource) String() string { return r.Kind.Name + "/" + r.key() }

// readResources reads the documents of the file called name, substituting
// variables (see expandVars) in its string values, and checks each: a
// known kind that apply covers, its key, and only fields of the API's
// create body. Two documents for the same resource are an error.
func readResources(rd io.Reader, name string, lookup func(string) (string, bool)) ([]resource, error) {
	dec := yaml.NewDecoder(rd)
	var out []resource
	seen := map[string]string{}
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		nodes := []*yaml.Node{doc.Content[0]}
		if doc.Content[0].Kind == yaml.SequenceNode {
			nodes = doc.Content[0].Content
		}
		for _, n := range nodes {
			if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
				continue // an empty document
			}
			where := fmt.Sprintf("%s:%d", name, n.Line)
			r, err := readResource(n, where, lookup)
			if err != nil {
				return nil, err
			}
			if first, dup := seen[r.String()]; dup {
				return nil, fmt.Errorf("%s: %s is also at %s; a file gives each resource once", where, r, first)
			}
			seen[r.String()] = where
			out = append(out, r)
		}
	}
	return out, nil
}

// readResource reads one resource's mapping n, written at where.
func readResource(n *yaml.Node, where string, lookup func(string) (string, bool)) (resource, error) {
	if n.Kind != yaml.MappingNode {
		return resource{}, fmt.Errorf("%s: a resource is a mapping with a kind and its fields, not a %s", where, n.ShortTag())
	}
	if err := expandNode(n, lookup); err != nil {
		return resource{}, fmt.Errorf("%s: %w", where, err)
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return resource{}, fmt.Errorf("%s: %w", where, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return resource{}, fmt.Errorf("%s: not representable in JSON (a mapping key that is not a string?): %w", where, err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return resource{}, fmt.Errorf("%s: %w", where, err)
	}
	kindName, _ := fields["kind"].(string)
	delete(fields, "kind")
	k, ok := kindNamed(kindName)
	switch {
	case kindName == "":
		return resource{}, fmt.Errorf("%s: no kind (one of %s)", where, kindNames())
	case !ok:
		return resource{}, fmt.Errorf("%s: unknown kind %q (one of %s)", where, kindName, kindNames())
	case !k.Applied:
		return resource{}, fmt.Errorf("%s: %s resources are not applied: a key's secret is shown only when it is created (POST %s)", where, k.Name, k.path())
	}
	r := resource{Kind: k, Fields: fields, Source: where}
	if r.key() == "" {
		return resource{}, fmt.Errorf("%s: a %s needs %s", where, k.Name, strings.Join(k.Key, " and "))
	}
	fs, err := fieldsOf(k)
	if err != nil {
		return resource{}, err
	}
	for f := range fields {
		switch {
		case slices.Contains(fs.Create, f):
		case fs.Read[f]:
			return resource{}, fmt.Errorf("%s: %s: field %s is read-only (the API sets it)", where, r, f)
		default:
			return resource{}, fmt.Errorf("%s: %s: unknown field %q (a %s has %s)", where, r, f, k.Name, strings.Join(fs.Create, ", "))
		}
	}
	return r, nil
}

// expandNode substitutes variables in the string values under n (never in
// mapping keys). A plain (unquoted) value is read again as YAML after the
// substitution, as if its text had been written there: `${N}` with N=3
// is the number 3, with N empty null; quote it to keep a string.
func expandNode(n *yaml.Node, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if err := expandNode(n.Content[i], lookup); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := expandNode(c, lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" || !strings.Contains(n.Value, "$") {
			return nil
		}
		v, err := expandVars(n.Value, lookup)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		n.Value = v
		if n.Style == 0 {
			n.Tag = "" // resolved again from the new text
		} else {
			n.Tag = "!!str"
		}
	}
	return nil
}

// document is a resource as `get -o yaml|json` writes it: kind, key,
// then the create body's fields in the API description's order.
type document []documentField

type documentField struct {
	Name  string
	Value any
}

// documentOf turns an object the API answered into its document: only the
// fields of the create body (no id, no status, no counts), with each $
// that apply would read as a variable doubled and whole numbers written
// as integers (see documentValue).
func documentOf(k *kind, obj map[string]any) (document, error) {
	fs, err := fieldsOf(k)
	if err != nil {
		return nil, err
	}
	doc := document{{"kind", k.Name}}
	for _, f := range k.Key {
		doc = append(doc, documentField{f, documentValue(obj[f])})
	}
	for _, f := range fs.Create {
		v, ok := obj[f]
		if !ok || slices.Contains(k.Key, f) {
			continue
		}
		doc = append(doc, documentField{f, documentValue(v)})
	}
	return doc, nil
}

// documentValue is v, a value as JSON decodes it, as a document writes
// it: escapeVars applied to every string (not to keys), and every whole
// number an int64, so that 1048576 is written so and not as the float
// 1.048576e+06 (YAML writes a float64 in its shortest form, exponent
// included).
func documentValue(v any) any {
	switch v := v.(type) {
	case string:
		return escapeVars(v)
	case float64:
		// Within ±2^63 a whole float64 converts exactly.
		if v == math.Trunc(v) && v >= math.MinInt64 && v < math.MaxInt64 {
			return int64(v)
		}
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = documentValue(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = documentValue(x)
		}
		return out
	}
	return v
}

// writeYAML writes docs as a YAML stream, one document each.
func writeYAML(w io.Writer, docs []document) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	for _, d := range docs {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, f := range d {
			var v yaml.Node
			if err := v.Encode(f.Value); err != nil {
				return fmt.Errorf("encoding field %s: %w", f.Name, err)
			}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: f.Name}, &v)
		}
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	return enc.Close()
}

// writeJSON writes docs as one indented JSON array.
func writeJSON(w io.Writer, docs []document) error {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, d := range docs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		for j, f := range d {
			if j > 0 {
				b.WriteByte(',')
			}
			k, _ := marshalJSON(f.Name)
			v, err := marshalJSON(f.Value)
			if err != nil {
				return fmt.Errorf("encoding field %s: %w", f.Name, err)
			}
			b.Write(k)
			b.WriteByte(':')
			b.Write(v)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// marshalJSON is json.Marshal without escaping <, > and & (the output is
// for files, not HTML).
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
