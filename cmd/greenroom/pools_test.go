package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// poolList is what GET /api/v1/pools answers: a server pool with two
// servers and a workspace, and a docker_agent pool with one agent.
const poolList = `{"items":[
 {"id":"0192f3a4-0000-7000-8000-0000000000b1","name":"desktops","type":"server","server_assignment":true,"labels":["gpu"],
  "created_at":"2025-11-24T06:00:00Z","updated_at":"2025-11-24T06:00:00Z","workspaces":["desk"],
  "members":[
   {"name":"desk-1","zone":"zone-a","address":"10.0.0.1","enabled":true,"max_sessions":3,"sessions":2,"assigned_user":null,
    "labels":["a"],"effective_labels":["a","gpu"]},
   {"name":"desk-2","zone":"zone-a","address":"10.0.0.2","enabled":false,"max_sessions":1,"sessions":0,"assigned_user":"bob",
    "labels":[],"effective_labels":["gpu"]}]},
 {"id":"0192f3a4-0000-7000-8000-0000000000b2","name":"gpu-agents","type":"docker_agent","server_assignment":false,"labels":[],
  "created_at":"2025-11-24T06:00:00Z","updated_at":"2025-11-24T06:00:00Z","workspaces":[],
  "members":[
   {"name":"agent-1","zone":"zone-a","enabled":true,"cores":4,"memory_mb":4096,"sessions":1,"free_cores":2.5,"free_memory_mb":3072,
    "labels":["ssd"],"effective_labels":["ssd"]}]}
]}`

func TestPoolsShowsMembersWithTheirSessionsAndCapacity(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/pools"] = func(*http.Request) any { return json.RawMessage(poolList) }
	out, errOut, code := runCLI(t, api.env(), "pools")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	row := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix+" ") {
				return strings.Join(strings.Fields(l), " ")
			}
		}
		t.Errorf("no row for %s in:\n%s", prefix, out)
		return ""
	}
	for prefix, want := range map[string]string{
		"desktops":   "desktops server yes gpu 2 2 desk",
		"gpu-agents": "gpu-agents docker_agent - - 1 1 -",
		"desk-1":     "desk-1 zone-a 10.0.0.1 yes 2/3 - a,gpu",
		"desk-2":     "desk-2 zone-a 10.0.0.2 no 0/1 bob gpu",
		"agent-1":    "agent-1 zone-a yes 1 2.5/4 3072/4096 ssd",
	} {
		if got := row(prefix); got != want {
			t.Errorf("row %q, want %q", got, want)
		}
	}
	for _, want := range []string{"SERVER ASSIGNMENT", "desktops (server pool)", "ASSIGNED USER", "gpu-agents (docker_agent pool)", "FREE CORES"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPoolsNamedShowsThatPool(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/pools/empty"] = func(*http.Request) any {
		return json.RawMessage(`{"id":"0192f3a4-0000-7000-8000-0000000000b3","name":"empty","type":"server","server_assignment":false,
		  "labels":[],"created_at":"2025-11-24T06:00:00Z","updated_at":"2025-11-24T06:00:00Z","members":[],"workspaces":[]}`)
	}
	out, errOut, code := runCLI(t, api.env(), "pools", "empty")
	if code != exitOK || !strings.Contains(out, "empty (server pool)") || !strings.Contains(out, "(no servers)") {
		t.Fatalf("exit %d, %s:\n%s", code, errOut, out)
	}
	if _, errOut, code := runCLI(t, api.env(), "pools", "nowhere"); code != exitFailure || !strings.Contains(errOut, "404") {
		t.Errorf("unknown pool: exit %d, %q", code, errOut)
	}
	api.gets["/api/v1/pools"] = func(*http.Request) any { return json.RawMessage(`{"items":[]}`) }
	if out, _, code := runCLI(t, api.env(), "pools"); code != exitOK || strings.TrimSpace(out) != "(no pools)" {
		t.Errorf("no pools: exit %d, %q", code, out)
	}
}

func TestPoolsJSONIsTheAPIAnswer(t *testing.T) {
	api := newFakeAPI(t)
	api.gets["/api/v1/pools"] = func(*http.Request) any { return json.RawMessage(poolList) }
	out, _, code := runCLI(t, api.env(), "pools", "--json")
	var got struct {
		Items []struct {
			Members []map[string]any `json:"members"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK || len(got.Items) != 2 || got.Items[0].Members[1]["assigned_user"] != "bob" {
		t.Fatalf("exit %d, %v, %s", code, err, out)
	}
}
