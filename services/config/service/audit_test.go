package service_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// The audit trail of configuration (the audit issue): every change is a
// greenroom.config.changed naming who made it, with the object as the API
// showed it before and shows it after, secrets redacted.

// change is one greenroom.config.changed as the stream holds it.
type change struct {
	events.ConfigChanged
	subject string
	raw     []byte
}

// nextChange reads the next greenroom.config.changed from c, checked
// against its schema as a writer must send it.
func (h *harness) nextChange(c jetstream.Consumer) change {
	h.t.Helper()
	msg := nextEvent(h.t, c)
	var ch change
	h.decodeEvent(msg.Data(), &ch.ConfigChanged)
	ch.subject, ch.raw = msg.Subject(), msg.Data()
	return ch
}

// changes relays the outbox and reads every greenroom.config.changed it
// published, in order, from c, which reads all of them (the config
// service publishes no other events).
func (h *harness) changes(c jetstream.Consumer) []change {
	h.t.Helper()
	n := h.relayOnce()
	out := make([]change, n)
	for i := range out {
		out[i] = h.nextChange(c)
	}
	return out
}

// view is what GET path answers (200).
func (h *harness) view(path string, opts ...callOption) obj {
	h.t.Helper()
	var o obj
	h.must(200, "GET", path, nil, &o, opts...)
	return o
}

// object decodes an object a change carries; nil when there is none.
func object(t *testing.T, raw json.RawMessage) obj {
	t.Helper()
	if raw == nil {
		return nil
	}
	var o obj
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return o
}

// differing lists the members whose values differ between a and b.
func differing(a, b obj) []string {
	var out []string
	for k := range maps.Keys(a) {
		if !reflect.DeepEqual(a[k], b[k]) {
			out = append(out, k)
		}
	}
	for k := range maps.Keys(b) {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

var adminToken = events.Actor{Type: events.ActorAdminToken}

func TestZoneEditedWithTheAdminTokenIsAnnouncedWithItsActorAndTheZoneBeforeAndAfter(t *testing.T) {
	h := newHarness(t)
	h.stagingZone("eu")
	c := h.streamConsumer("greenroom.config.changed.>")
	h.changes(c)
	was := h.view("/api/v1/zones/eu")

	h.must(200, "PATCH", "/api/v1/zones/eu", obj{"priority": 7}, nil)
	is := h.view("/api/v1/zones/eu")
	got := h.changes(c)
	if len(got) != 1 {
		t.Fatalf("%d changes announced, want 1", len(got))
	}
	ch := got[0]
	if ch.Kind != "zone" || ch.Op != "updated" || ch.Name != "eu" || ch.ID != was.str("id") || ch.subject != "greenroom.config.changed.zone" {
		t.Errorf("announced %s %s %s %q on %s, want zone updated eu", ch.Kind, ch.Op, ch.ID, ch.Name, ch.subject)
	}
	if ch.Actor != adminToken {
		t.Errorf("actor %+v, want %+v", ch.Actor, adminToken)
	}
	before, after := object(t, ch.Before), object(t, ch.After)
	if !reflect.DeepEqual(before, was) || !reflect.DeepEqual(after, is) {
		t.Errorf("before %v, after %v: want the GET answers %v and %v", before, after, was, is)
	}
	// The edited field, and the time of the edit that every update sets.
	if d := differing(before, after); !slices.Equal(d, []string{"priority", "updated_at"}) {
		t.Errorf("before and after differ in %v, want priority (and updated_at)", d)
	}
	if before["priority"] == after["priority"] || after["priority"] != 7.0 {
		t.Errorf("priority %v → %v, want → 7", before["priority"], after["priority"])
	}
}

func TestWorkspaceCreatedWithAnAdminAPIKeyNamesTheKey(t *testing.T) {
	h := newHarness(t)
	_, secret := h.issueKey("deployer", "admin")
	c := h.streamConsumer("greenroom.config.changed.>")
	h.changes(c)

	h.must(201, "POST", "/api/v1/workspaces", obj{"name": "demo", "image": "greenroom/demo:latest"}, nil, withKey(secret))
	got := h.changes(c)
	if len(got) != 1 {
		t.Fatalf("%d workspace changes, want 1", len(got))
	}
	ch := got[0]
	if want := (events.Actor{Type: events.ActorAPIKey, Name: "deployer"}); ch.Actor != want {
		t.Errorf("actor %+v, want %+v", ch.Actor, want)
	}
	if ch.Op != "created" || ch.Before != nil || !reflect.DeepEqual(object(t, ch.After), h.view("/api/v1/workspaces/demo")) {
		t.Errorf("%s with before %s, after %s: want created, no before, the workspace as GET shows it after", ch.Op, ch.Before, ch.After)
	}
	if bytes.Contains(ch.raw, []byte(secret)) || bytes.Contains(ch.raw, []byte(secret[12:])) {
		t.Errorf("the event carries the key's secret: %s", ch.raw)
	}
}

func TestUserPasswordIsInNoConfigChange(t *testing.T) {
	h := newHarness(t)
	const first, second = "first-Secret-passphrase-91", "second-Secret-passphrase-37"
	c := h.streamConsumer("greenroom.config.changed.>")

	h.must(201, "POST", "/api/v1/users", obj{"username": "alice", "password": first}, nil)
	h.must(200, "PATCH", "/api/v1/users/alice", obj{"password": second}, nil)
	h.must(200, "PATCH", "/api/v1/users/alice", obj{"password": nil}, nil)
	got := h.changes(c)
	if len(got) != 3 {
		t.Fatalf("%d user changes, want 3", len(got))
	}
	for _, ch := range got {
		for _, pw := range []string{first, second} {
			if bytes.Contains(ch.raw, []byte(pw)) {
				t.Errorf("%s of alice carries a password: %s", ch.Op, ch.raw)
			}
		}
		for _, o := range []obj{object(t, ch.Before), object(t, ch.After)} {
			if _, ok := o["password"]; ok {
				t.Errorf("%s of alice shows a password member: %v", ch.Op, o)
			}
		}
	}
	// Whether she has one is no secret: an auditor sees it set and removed.
	hasPassword := func(raw json.RawMessage) any { return object(t, raw)["has_password"] }
	if hasPassword(got[0].After) != true || hasPassword(got[1].Before) != true || hasPassword(got[2].After) != false {
		t.Errorf("has_password after creation %v, before the change %v, after the removal %v; want true, true, false",
			hasPassword(got[0].After), hasPassword(got[1].Before), hasPassword(got[2].After))
	}
}

func TestDeleteIsAnnouncedWithTheObjectBeforeAndNoAfter(t *testing.T) {
	h := newHarness(t)
	h.stagingZone("eu")
	c := h.streamConsumer("greenroom.config.changed.>")
	h.changes(c)
	was := h.view("/api/v1/zones/eu")

	h.must(204, "DELETE", "/api/v1/zones/eu", nil, nil)
	got := h.changes(c)
	if len(got) != 1 {
		t.Fatalf("%d changes announced, want 1", len(got))
	}
	ch := got[0]
	if ch.Op != "deleted" || ch.Actor != adminToken || !reflect.DeepEqual(object(t, ch.Before), was) {
		t.Errorf("%s by %+v with before %s: want deleted by the admin token, before the zone as GET showed it", ch.Op, ch.Actor, ch.Before)
	}
	var data struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(ch.raw, &data); err != nil {
		t.Fatal(err)
	}
	if _, ok := data.Data["after"]; ok {
		t.Errorf("a deletion carries an after: %s", ch.raw)
	}
}

// TestEveryKindAndOpCarriesTheObjectBeforeAndAfter: each kind created,
// updated (but API keys, which are never changed) and deleted through the
// API announces the object as GET showed it before (not on created) and
// shows it after (not on deleted).
func TestEveryKindAndOpCarriesTheObjectBeforeAndAfter(t *testing.T) {
	h := newHarness(t)
	c := h.streamConsumer("greenroom.config.changed.>")
	type step struct {
		kind, collection, key string
		create, update        obj
	}
	steps := []step{
		{"zone", "zones", "eu", obj{"name": "eu", "allow_origin_domain": "eu.example.test", "upstream_auth_address": "auth.eu.example.test"},
			obj{"search_alternate_zones": true}},
		{"pool", "pools", "gpu", obj{"name": "gpu", "type": "docker_agent"}, obj{"labels": []string{"gpu"}}},
		{"agent", "agents", "agent-1", obj{"name": "agent-1", "zone": "eu", "pool": "gpu", "docker_endpoint": "unix:///var/run/docker.sock",
			"cores": 2, "memory_mb": 2048}, obj{"enabled": false}},
		{"pool", "pools", "desktops", obj{"name": "desktops", "type": "server"}, obj{"server_assignment": true}},
		{"server", "servers", "desk-1", obj{"name": "desk-1", "zone": "eu", "pool": "desktops", "address": "10.0.0.5", "max_sessions": 2},
			obj{"max_sessions": 3}},
		{"web_filter_policy", "web-filter-policies", "strict", obj{"name": "strict"}, obj{"denied_domains": []string{"example.com"}}},
		{"workspace", "workspaces", "demo", obj{"name": "demo", "image": "greenroom/demo:latest", "cores": 0.5, "memory_mb": 256},
			obj{"image": "greenroom/demo:2"}},
		{"group", "groups", "everyone", obj{"name": "everyone", "web_filter_policy": "strict"}, obj{"allow_audio": false}},
		{"user", "users", "alice", obj{"username": "alice", "groups": []string{"everyone"}}, obj{"username": "alicia"}},
		{"staging_config", "staging-configs", "", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 1},
			obj{"desired_sessions": 2}},
		{"api_key", "api-keys", "robot", obj{"name": "robot", "scopes": []string{"sessions"}}, nil},
	}
	check := func(t *testing.T, ch change, kind, op string, before, after obj) {
		t.Helper()
		if ch.Kind != kind || ch.Op != op || ch.subject != "greenroom.config.changed."+kind || ch.Actor != adminToken {
			t.Errorf("announced %s %s on %s by %+v, want %s %s by the admin token", ch.Kind, ch.Op, ch.subject, ch.Actor, kind, op)
		}
		if got := object(t, ch.Before); !reflect.DeepEqual(got, before) {
			t.Errorf("%s %s: before %v, want %v", kind, op, got, before)
		}
		if got := object(t, ch.After); !reflect.DeepEqual(got, after) {
			t.Errorf("%s %s: after %v, want %v", kind, op, got, after)
		}
	}
	h.changes(c)
	paths := map[int]string{}
	for i, s := range steps {
		t.Run("create "+s.kind+" "+s.key, func(t *testing.T) {
			h := h.in(t)
			created := h.create(s.collection, s.create)
			key := s.key
			if key == "" {
				key = created.str("id")
			}
			paths[i] = "/api/v1/" + s.collection + "/" + key
			got := h.changes(c)
			if len(got) != 1 {
				t.Fatalf("%d changes, want 1", len(got))
			}
			check(t, got[0], s.kind, "created", nil, h.view(paths[i]))
		})
	}
	for i, s := range steps {
		if s.update == nil {
			continue
		}
		t.Run("update "+s.kind+" "+s.key, func(t *testing.T) {
			h := h.in(t)
			was := h.view(paths[i])
			var is obj
			h.must(200, "PATCH", paths[i], s.update, &is)
			if name, ok := s.update["username"].(string); ok {
				paths[i] = "/api/v1/" + s.collection + "/" + name
			}
			if !reflect.DeepEqual(is, h.view(paths[i])) {
				t.Fatalf("PATCH answered %v, GET %v", is, h.view(paths[i]))
			}
			got := h.changes(c)
			if len(got) != 1 {
				t.Fatalf("%d changes, want 1", len(got))
			}
			check(t, got[0], s.kind, "updated", was, is)
		})
	}
	for _, i := range []int{9, 10, 8, 7, 6, 5, 4, 3, 2, 1, 0} {
		s := steps[i]
		t.Run("delete "+s.kind+" "+s.key, func(t *testing.T) {
			h := h.in(t)
			was := h.view(paths[i])
			h.must(204, "DELETE", paths[i], nil, nil)
			got := h.changes(c)
			if len(got) != 1 {
				t.Fatalf("%d changes, want 1", len(got))
			}
			check(t, got[0], s.kind, "deleted", was, nil)
		})
	}
}

// TestSecretLookingMembersAreRedactedInConfigChanges: a free-form object
// (here a workspace's assign environment) may hold a secret the API shows;
// what looks like one is redacted in what a change carries.
func TestSecretLookingMembersAreRedactedInConfigChanges(t *testing.T) {
	h := newHarness(t)
	const secret = "s3cr3t-value-of-the-assign-step"
	c := h.streamConsumer("greenroom.config.changed.>")
	h.create("workspaces", obj{"name": "demo", "image": "greenroom/demo:latest", "docker_exec_config": obj{
		"assign": obj{"cmd": "/bin/assign", "environment": obj{"API_TOKEN": secret, "MODE": "kiosk"}},
	}})
	got := h.changes(c)
	if len(got) != 1 {
		t.Fatalf("%d workspace changes, want 1", len(got))
	}
	if bytes.Contains(got[0].raw, []byte(secret)) {
		t.Fatalf("the event carries the secret: %s", got[0].raw)
	}
	var after struct {
		DockerExecConfig struct {
			Assign struct {
				Environment map[string]string `json:"environment"`
			} `json:"assign"`
		} `json:"docker_exec_config"`
	}
	if err := json.Unmarshal(got[0].After, &after); err != nil {
		t.Fatal(err)
	}
	if env := after.DockerExecConfig.Assign.Environment; env["API_TOKEN"] != events.Redacted || env["MODE"] != "kiosk" {
		t.Errorf("assign environment %v, want API_TOKEN redacted and MODE kept", env)
	}
}

// TestWorkspacesOfAChangedWebFilterPolicyAreAnnouncedBeforeAndAfter: a
// policy's change is a new revision of each workspace using it, announced
// by the same actor with the workspace as it was and is.
func TestWorkspacesOfAChangedWebFilterPolicyAreAnnouncedBeforeAndAfter(t *testing.T) {
	h := newHarness(t)
	h.create("web-filter-policies", obj{"name": "strict"})
	h.create("workspaces", obj{"name": "uses", "image": "x", "web_filter_policy": "strict"})
	_, secret := h.issueKey("ops", "admin")
	c := h.streamConsumer("greenroom.config.changed.>")
	h.changes(c)
	was := h.view("/api/v1/workspaces/uses")

	h.must(200, "PATCH", "/api/v1/web-filter-policies/strict", obj{"name": "tight"}, nil, withKey(secret))
	got := h.changes(c)
	if len(got) != 2 || got[0].Kind != "workspace" || got[1].Kind != "web_filter_policy" {
		t.Fatalf("changes %+v, want the workspace's and the policy's", got)
	}
	ops := events.Actor{Type: events.ActorAPIKey, Name: "ops"}
	ws := got[0]
	if ws.Actor != ops || got[1].Actor != ops {
		t.Errorf("actors %+v and %+v, want both %+v", ws.Actor, got[1].Actor, ops)
	}
	before, after := object(t, ws.Before), object(t, ws.After)
	if !reflect.DeepEqual(before, was) || !reflect.DeepEqual(after, h.view("/api/v1/workspaces/uses")) {
		t.Errorf("workspace before %v, after %v: want the GET answers before and after", before, after)
	}
	if d := differing(before, after); !slices.Equal(d, []string{"revision", "updated_at", "web_filter_policy"}) {
		t.Errorf("workspace before and after differ in %v, want its revision, updated_at and web_filter_policy", d)
	}
	if before["web_filter_policy"] != "strict" || after["web_filter_policy"] != "tight" {
		t.Errorf("web_filter_policy %v → %v, want strict → tight", before["web_filter_policy"], after["web_filter_policy"])
	}
}
