package service_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// TestConfigChangePublishesEvent checks that every create, update and
// delete announces itself on greenroom.config.changed.<kind>, through the
// outbox: nothing is published until the relay runs, then each change is
// one event, valid against its schema, with Nats-Msg-Id = the event id.
func TestConfigChangePublishesEvent(t *testing.T) {
	h := newHarness(t)
	type change struct{ kind, op, id, name string }
	var want []change
	created := func(kind, nameKey string, o obj) {
		want = append(want, change{kind, "created", o.str("id"), o.str(nameKey)})
	}
	zone := h.stagingZone("eu")
	created("zone", "name", zone)
	created("pool", "name", h.create("pools", obj{"name": "p1", "type": "docker_agent"}))
	created("agent", "name", h.create("agents", obj{"name": "a1", "zone": "eu", "docker_endpoint": "tcp://10.0.0.9:2375", "cores": 1, "memory_mb": 512}))
	created("server", "name", h.create("servers", obj{"name": "s1", "zone": "eu", "address": "10.0.0.1"}))
	created("workspace", "name", h.create("workspaces", obj{"name": "demo", "image": "x"}))
	created("group", "name", h.create("groups", obj{"name": "everyone"}))
	created("user", "username", h.create("users", obj{"username": "alice"}))
	sc := h.create("staging-configs", obj{"zone": "eu", "workspace": "demo", "desired_sessions": 2})
	want = append(want, change{"staging_config", "created", sc.str("id"), ""})
	h.must(200, "PATCH", "/api/v1/staging-configs/"+sc.str("id"), obj{"desired_sessions": 0}, nil)
	want = append(want, change{"staging_config", "updated", sc.str("id"), ""})
	h.must(200, "PATCH", "/api/v1/zones/eu", obj{"name": "europe"}, nil)
	want = append(want, change{"zone", "updated", zone.str("id"), "europe"})
	h.must(204, "DELETE", "/api/v1/staging-configs/"+sc.str("id"), nil, nil)
	want = append(want, change{"staging_config", "deleted", sc.str("id"), ""})
	h.must(204, "DELETE", "/api/v1/users/alice", nil, nil)
	want = append(want, change{"user", "deleted", want[6].id, "alice"})

	if n := len(h.events.Find("greenroom.config.changed.zone", "")); n != 0 {
		t.Fatalf("%d events published before the relay ran", n)
	}
	if n := h.relayOnce(); n != len(want) {
		t.Fatalf("relay published %d events, want %d", n, len(want))
	}
	c := h.streamConsumer("greenroom.config.changed.>")
	for i, w := range want {
		msg := nextEvent(t, c)
		var got events.ConfigChanged
		ev := h.decodeEvent(msg.Data(), &got)
		if msg.Subject() != "greenroom.config.changed."+w.kind {
			t.Errorf("event %d on %s, want kind %s", i, msg.Subject(), w.kind)
		}
		if got != (events.ConfigChanged{Kind: w.kind, Op: w.op, ID: w.id, Name: w.name}) {
			t.Errorf("event %d: %+v, want %+v", i, got, w)
		}
		if ev.Type != events.TypeConfigChanged || ev.Source != "greenroom/config" || msg.Headers().Get(jetstream.MsgIDHeader) != ev.ID {
			t.Errorf("event %d envelope: type %s source %s msg id %q (event id %s)", i, ev.Type, ev.Source, msg.Headers().Get(jetstream.MsgIDHeader), ev.ID)
		}
	}
	if h.outboxRows() != 0 {
		t.Error("the relay left events in the outbox")
	}
}
