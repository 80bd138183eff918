package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const onDemandSessionList = `{"items":[
 {"id":"0192f3a4-0000-7000-8000-000000000001","request_id":null,"user":null,"workspace":"demo","zone":"zone-a",
  "agent":"agent-zone-a","server":null,"container_id":"c1","url":"http://127.0.0.1:32768/","origin":"staged","status":"staged",
  "staging_config_id":"0192f3a4-0000-7000-8000-0000000000aa","failure_reason":"","on_demand_reason":null,
  "created_at":"2025-11-24T06:00:00Z","staged_at":"2025-11-24T06:00:01Z","assigned_at":null,"expires_at":null,"destroyed_at":null},
 {"id":"0192f3a4-0000-7000-8000-000000000002","request_id":"r1","user":"bob","workspace":"demo","zone":"zone-a",
  "agent":"agent-zone-a","server":null,"container_id":"c2","url":"http://127.0.0.1:32769/","origin":"on_demand","status":"running",
  "staging_config_id":null,"failure_reason":"","on_demand_reason":"permissions_differ:allow_audio",
  "created_at":"2025-11-24T05:00:00Z","staged_at":null,"assigned_at":null,"expires_at":"2025-11-24T13:00:00Z","destroyed_at":null}
]}`

func TestSessionsTableSaysWhyASessionIsOnDemand(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/sessions"] = func(*http.Request) any { return json.RawMessage(onDemandSessionList) }
	out, errOut, code := runCLI(t, api.env(), "sessions")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", out)
	}
	header := lines[0]
	from, to := strings.Index(header, "ON-DEMAND REASON"), strings.Index(header, "AGENT/SERVER")
	if from < 0 || to < from {
		t.Fatalf("header %q lacks ON-DEMAND REASON before AGENT/SERVER", header)
	}
	if cell := strings.TrimSpace(lines[1][from:to]); cell != "" {
		t.Errorf("staged session shows reason %q, want none", cell)
	}
	if cell := strings.TrimSpace(lines[2][from:to]); cell != "permissions_differ:allow_audio" {
		t.Errorf("on-demand session shows reason %q", cell)
	}
}

func TestSessionsJSONHasTheOnDemandReason(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/sessions"] = func(*http.Request) any { return json.RawMessage(onDemandSessionList) }
	out, _, code := runCLI(t, api.env(), "sessions", "--json")
	var got struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK || len(got.Items) != 2 {
		t.Fatalf("exit %d, %v, %s", code, err, out)
	}
	if r, ok := got.Items[0]["on_demand_reason"]; !ok || r != nil {
		t.Errorf("staged session: on_demand_reason %v (present %v), want null", r, ok)
	}
	if got.Items[1]["on_demand_reason"] != "permissions_differ:allow_audio" {
		t.Errorf("on-demand session: on_demand_reason %v", got.Items[1]["on_demand_reason"])
	}
}
