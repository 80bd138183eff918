package events

import (
	"bytes"
	"encoding/json"
	"strings"
)

// ConfigChanged announces a change made through the config service: what
// changed, who changed it, and the object as the API showed it before and
// shows it after, so that an auditor reading the stream sees every change
// in the API's own words (fields by their API names, references by name).
type ConfigChanged struct {
	Kind string `json:"kind"`
	Op   string `json:"op"`
	ID   string `json:"id"`
	Name string `json:"name"`
	// Actor is always written by the config service; events from before
	// it existed lack it (the schema does not require it, for readers).
	Actor Actor `json:"actor,omitzero"`
	// Before is the object as the API showed it before the change; absent
	// on created.
	Before json.RawMessage `json:"before,omitempty"`
	// After is the object as the API shows it after the change; absent on
	// deleted.
	After json.RawMessage `json:"after,omitempty"`
}

// Actor is who made a change: Type ActorAdminToken (Name empty),
// ActorAPIKey (Name is the key's name), ActorAdminUser (Name is the
// user's), or ActorSystem (Name says which part, for changes a service
// makes on its own).
type Actor struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
}

// Types of Actor.
const (
	ActorAdminToken = "admin_token"
	ActorAPIKey     = "api_key"
	ActorAdminUser  = "admin_user"
	ActorSystem     = "system"
)

// Redacted replaces the value of a member RedactSecrets takes for a secret.
const Redacted = "[redacted]"

// secretWords mark a member's name as one that may hold a secret.
var secretWords = []string{"password", "secret", "token"}

// RedactSecrets returns raw, a JSON value, with the value of every member
// whose name contains "password", "secret" or "token" (in any case, at any
// depth) replaced by the string "[redacted]". It is a safety net under the
// objects ConfigChanged carries, which should hold no secret in the first
// place: a free-form object (a workspace's docker_exec_config environment,
// a user's attributes) may. A true, false or null is kept: it says whether
// there is one (has_password), never what it is. Members keep their order;
// raw that is not JSON comes back nil, since what cannot be read cannot be
// checked.
func RedactSecrets(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || !json.Valid(raw) {
		return nil
	}
	var b bytes.Buffer
	if err := redact(&b, raw); err != nil {
		return nil
	}
	return b.Bytes()
}

// redact writes the JSON value raw to b, compacted, with its members that
// may hold a secret redacted.
func redact(b *bytes.Buffer, raw json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return redactMembers(b, dec)
	case json.Delim('['):
		return redactElements(b, dec)
	}
	return json.Compact(b, raw)
}

// redactMembers writes the members of the object dec has just opened.
func redactMembers(b *bytes.Buffer, dec *json.Decoder) error {
	b.WriteByte('{')
	for i := 0; dec.More(); i++ {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := tok.(string)
		name, _ := json.Marshal(key)
		b.Write(name)
		b.WriteByte(':')
		if mayHoldSecret(key) && !saysOnlyWhether(value) {
			b.WriteString(`"` + Redacted + `"`)
		} else if err := redact(b, value); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	_, err := dec.Token()
	return err
}

// redactElements writes the elements of the array dec has just opened.
func redactElements(b *bytes.Buffer, dec *json.Decoder) error {
	b.WriteByte('[')
	for i := 0; dec.More(); i++ {
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		if err := redact(b, value); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	_, err := dec.Token()
	return err
}

// mayHoldSecret reports whether a member named name may hold a secret.
func mayHoldSecret(name string) bool {
	name = strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// saysOnlyWhether reports whether value is true, false or null.
func saysOnlyWhether(value json.RawMessage) bool {
	switch string(bytes.TrimSpace(value)) {
	case "true", "false", "null":
		return true
	}
	return false
}
