package audit_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/greenroom-dev/greenroom/libs/audit"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// logOf turns (subject, type, data) triples into records, in order.
type logOf struct {
	t    *testing.T
	recs []audit.Record
}

func (l *logOf) add(subject, eventType string, data any) {
	l.t.Helper()
	ev, err := events.New("greenroom/test", eventType, data)
	if err != nil {
		l.t.Fatal(err)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		l.t.Fatal(err)
	}
	l.recs = append(l.recs, audit.Record{Seq: uint64(len(l.recs) + 1), Time: time.Now(), Subject: subject,
		Header: nats.Header{"Nats-Msg-Id": {ev.ID}}, Payload: raw})
}

const (
	s1 = "0192f3a4-0000-7000-8000-000000000001"
	s2 = "0192f3a4-0000-7000-8000-000000000002"
	s3 = "0192f3a4-0000-7000-8000-000000000003"
	s4 = "0192f3a4-0000-7000-8000-000000000004"
	sc = "0192f3a4-0000-7000-8000-0000000000cc"
)

// The rebuild follows each session through its events, even when two
// services' events reach the stream out of order, and counts how each
// request was served.
func TestRebuildFollowsSessionsAndCountsHowRequestsWereServed(t *testing.T) {
	l := &logOf{t: t}
	// A staged session, made for the pool, claimed by alice in her zone.
	l.add(events.TypeProvisionRequested, events.TypeProvisionRequested, map[string]any{
		"session_id": s1, "workspace": "demo", "zones": []string{"zone-a"}, "origin": "staged", "staging_config_id": sc})
	l.add(events.TypeSessionRequested+".billing", events.TypeSessionRequested, map[string]any{
		"request_id": "r1", "user": "alice", "workspace": "demo", "zone": "zone-a"})
	// The claim reaches the stream before the staged event (another
	// service's relay): the session must not go back to staged.
	l.add(events.TypeSessionAssigned, events.TypeSessionAssigned, map[string]any{
		"request_id": "r1", "session_id": s1, "user": "alice", "workspace": "demo", "zone": "zone-a",
		"staging_config_id": sc, "requested_zone": "zone-a", "zone_search_step": 1})
	l.add(events.TypeSessionStaged, events.TypeSessionStaged, map[string]any{
		"session_id": s1, "staging_config_id": sc, "workspace": "demo", "zone": "zone-a", "agent": "a1", "container_id": "c1"})
	l.add(events.TypeSessionReady+".billing", events.TypeSessionReady, map[string]any{
		"request_id": "r1", "session_id": s1, "user": "alice", "workspace": "demo", "zone": "zone-a", "agent": "a1",
		"container_id": "c1", "url": "http://x/", "origin": "staged"})
	// bob: staged in an alternate zone.
	l.add(events.TypeSessionRequested, events.TypeSessionRequested, map[string]any{
		"request_id": "r2", "user": "bob", "workspace": "demo", "zone": "zone-a"})
	l.add(events.TypeSessionAssigned, events.TypeSessionAssigned, map[string]any{
		"request_id": "r2", "session_id": s2, "user": "bob", "workspace": "demo", "zone": "zone-b",
		"staging_config_id": sc, "requested_zone": "zone-a", "zone_search_step": 2})
	// carol: on demand (a permission differs), then expired and destroyed.
	l.add(events.TypeSessionRequested, events.TypeSessionRequested, map[string]any{
		"request_id": "r3", "user": "carol", "workspace": "demo", "zone": "zone-a"})
	l.add(events.TypeProvisionRequested, events.TypeProvisionRequested, map[string]any{
		"request_id": "r3", "session_id": s3, "workspace": "demo", "zones": []string{"zone-a"}, "origin": "on_demand",
		"on_demand_reason": "permissions_differ:allow_audio"})
	l.add(events.TypeSessionReady, events.TypeSessionReady, map[string]any{
		"request_id": "r3", "session_id": s3, "user": "carol", "workspace": "demo", "zone": "zone-a", "agent": "a1",
		"container_id": "c3", "url": "http://x/", "origin": "on_demand"})
	l.add(events.TypeSessionExpired, events.TypeSessionExpired, map[string]any{"session_id": s3, "request_id": "r3", "reason": "time_limit"})
	l.add(events.TypeSessionDestroyed, events.TypeSessionDestroyed, map[string]any{"session_id": s3, "request_id": "r3", "reason": "time_limit", "cause": "time_limit"})
	// dave: on demand with an incompatible setting, a violation, and no
	// capacity.
	l.add(events.TypeSessionRequested, events.TypeSessionRequested, map[string]any{
		"request_id": "r4", "user": "dave", "workspace": "demo", "zone": "zone-a"})
	l.add(events.TypeStagingViolation, events.TypeStagingViolation, map[string]any{
		"request_id": "r4", "user": "dave", "workspace": "demo", "zone": "zone-a", "setting": "inject_ssh_keys"})
	l.add(events.TypeProvisionRequested, events.TypeProvisionRequested, map[string]any{
		"request_id": "r4", "session_id": s4, "workspace": "demo", "zones": []string{"zone-a"}, "origin": "on_demand",
		"on_demand_reason": "incompatible:inject_ssh_keys"})
	l.add(events.TypeSessionFailed, events.TypeSessionFailed, map[string]any{
		"request_id": "r4", "session_id": s4, "reason": "no_capacity", "detail": "agent a1 is full"})
	// A request still waiting.
	l.add(events.TypeSessionRequested, events.TypeSessionRequested, map[string]any{
		"request_id": "r5", "user": "erin", "workspace": "demo", "zone": "zone-a"})
	l.add(events.TypeConfigChanged+".zone", events.TypeConfigChanged, map[string]any{
		"kind": "zone", "op": "updated", "id": sc, "name": "zone-a"})
	// Two autoscaled agents made, one of them drained and deleted.
	for _, step := range []struct{ agent, from, to string }{
		{"scaled-1", "", "provisioning"}, {"scaled-2", "", "provisioning"}, {"scaled-1", "provisioning", "active"},
		{"scaled-1", "active", "draining"}, {"scaled-1", "draining", "deleting"}, {"scaled-1", "deleting", "deleted"},
	} {
		d := map[string]any{"agent": step.agent, "agent_id": "0192f3a4-0000-7000-8000-0000000000a1", "to": step.to, "reason": "standby"}
		if step.from != "" {
			d["from"] = step.from
		}
		l.add(events.TypeAgentLifecycle, events.TypeAgentLifecycle, d)
	}
	l.recs = append(l.recs, audit.Record{Seq: uint64(len(l.recs) + 1), Subject: "greenroom.session.requested", Payload: []byte("not json")})

	st := audit.NewState()
	for _, r := range l.recs {
		st.Apply(r)
	}
	sm := st.Summary()
	want := map[string]int{"requests": 5, "ready": 2, "failed": 1, "pending": 2, "staged here": 1, "staged alternate": 1,
		"on demand": 2, "undecodable": 1, "events": len(l.recs)}
	got := map[string]int{"requests": sm.Requests, "ready": sm.Ready, "failed": sm.Failed, "pending": sm.Pending,
		"staged here": sm.StagedHere, "staged alternate": sm.StagedAlternate, "on demand": sm.OnDemand,
		"undecodable": sm.Undecodable, "events": sm.Events}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %d, want %d", k, got[k], w)
		}
	}
	if sm.OnDemandByReason["permissions_differ:allow_audio"] != 1 || sm.OnDemandByReason["incompatible:inject_ssh_keys"] != 1 {
		t.Errorf("on demand by reason %v", sm.OnDemandByReason)
	}
	if sm.FailedByReason["no_capacity"] != 1 || sm.ViolationsBySetting["inject_ssh_keys"] != 1 || sm.DestroyedByCause["time_limit"] != 1 {
		t.Errorf("failed %v, violations %v, destroyed %v", sm.FailedByReason, sm.ViolationsBySetting, sm.DestroyedByCause)
	}
	if sm.ConfigChanges["zone updated"] != 1 {
		t.Errorf("config changes %v", sm.ConfigChanges)
	}
	if sm.AgentsAdded != 2 || sm.AgentsDeleted != 1 {
		t.Errorf("agents added %d, deleted %d; want 2 and 1", sm.AgentsAdded, sm.AgentsDeleted)
	}
	for id, w := range map[string]audit.Session{
		s1: {Status: "running", User: "alice", Agent: "a1", ContainerID: "c1", Origin: "staged", RequestID: "r1"},
		s2: {Status: "assigning", User: "bob", Zone: "zone-b", Origin: "staged"},
		s3: {Status: "destroyed", User: "carol", Origin: "on_demand", OnDemandReason: "permissions_differ:allow_audio", DestroyCause: "time_limit"},
		s4: {Status: "failed", Failure: "no_capacity", OnDemandReason: "incompatible:inject_ssh_keys"},
	} {
		s := st.Sessions[id]
		if s == nil {
			t.Errorf("session %s not rebuilt", id)
			continue
		}
		if s.Status != w.Status || (w.User != "" && s.User != w.User) || (w.Agent != "" && s.Agent != w.Agent) ||
			(w.ContainerID != "" && s.ContainerID != w.ContainerID) || (w.Origin != "" && s.Origin != w.Origin) ||
			(w.Zone != "" && s.Zone != w.Zone) || s.OnDemandReason != w.OnDemandReason || s.DestroyCause != w.DestroyCause ||
			s.Failure != w.Failure || (w.RequestID != "" && s.RequestID != w.RequestID) {
			t.Errorf("session %s rebuilt as %+v, want %+v", id, *s, w)
		}
	}
	if q := st.Requests["r1"]; q.Requester != "billing" || q.SessionID != s1 {
		t.Errorf("request r1 %+v", *q)
	}

	// A timeline of r1 takes the staged session's earlier events too.
	rel := audit.Relate(st, audit.Selector{RequestID: "r1"})
	var types []string
	for _, r := range l.recs {
		if e, ok := rel.Entry(r); ok {
			types = append(types, e.Type)
		}
	}
	wantTypes := []string{events.TypeProvisionRequested, events.TypeSessionRequested, events.TypeSessionAssigned,
		events.TypeSessionStaged, events.TypeSessionReady}
	if len(types) != len(wantTypes) {
		t.Fatalf("timeline of r1: %v, want %v", types, wantTypes)
	}
	for i := range types {
		if types[i] != wantTypes[i] {
			t.Errorf("timeline of r1, event %d: %s, want %s", i, types[i], wantTypes[i])
		}
	}
	// A user's timeline takes every request and session of the user.
	rel = audit.Relate(st, audit.Selector{User: "dave"})
	if !rel.Requests["r4"] || !rel.Sessions[s4] || len(rel.Requests) != 1 {
		t.Errorf("dave's timeline follows %v %v", rel.Requests, rel.Sessions)
	}
}
