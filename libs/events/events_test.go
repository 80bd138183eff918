package events_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/schemas"
)

const (
	sessionID       = "0192f3a4-5b6c-7d8e-9f01-23456789abcd"
	stagingConfigID = "0192f3a4-5b6c-7d8e-9f01-23456789abce"
	userID          = "0192f3a4-5b6c-7d8e-9f01-23456789abcf"
	objectID        = "0192f3a4-5b6c-7d8e-9f01-23456789abd0"
	agentID         = "0192f3a4-5b6c-7d8e-9f01-23456789abd1"
	requestID       = "req-42"
	source          = "greenroom/test"
)

// samples holds one valid payload per event type, with every field set.
var samples = map[string]any{
	events.TypeSessionRequested: events.SessionRequested{
		RequestID: requestID, User: "alice", Workspace: "firefox", Zone: "eu",
	},
	events.TypeSessionAssigned: events.SessionAssigned{
		RequestID: requestID, SessionID: sessionID, User: "alice", UserID: userID,
		Workspace: "firefox", Zone: "us", StagingConfigID: stagingConfigID,
		RequestedZone: "eu", ZoneSearchStep: 2,
	},
	events.TypeProvisionRequested: events.ProvisionRequested{
		RequestID: requestID, SessionID: sessionID, Workspace: "firefox",
		Zones: []string{"eu", "us"}, Origin: "on_demand", OnDemandReason: "permissions_differ:allow_audio",
		RequestedZone: "eu",
	},
	events.TypeSessionStaged: events.SessionStaged{
		SessionID: sessionID, StagingConfigID: stagingConfigID, Workspace: "firefox",
		Zone: "eu", Agent: "agent-1", ContainerID: "3f2a9c",
	},
	events.TypeSessionReady: events.SessionReady{
		RequestID: requestID, SessionID: sessionID, User: "alice", Workspace: "firefox",
		Zone: "eu", Agent: "agent-1", ContainerID: "3f2a9c",
		URL: "http://127.0.0.1:32768/", Origin: "staged", RequestedZone: "eu", ZoneSearchStep: 1,
	},
	events.TypeSessionFailed: events.SessionFailed{
		RequestID: requestID, SessionID: sessionID, Reason: events.ReasonNoCapacity,
		Detail: "eu: no agent with 2 free cores",
	},
	events.TypeSessionDestroy: events.SessionDestroy{
		SessionID: sessionID, Reason: "api_delete",
	},
	events.TypeSessionDestroyed: events.SessionDestroyed{
		SessionID: sessionID, RequestID: requestID, StagingConfigID: stagingConfigID,
		Reason: events.ExpiredStaged, Cause: events.CauseExpired,
	},
	events.TypeSessionExpired: events.SessionExpired{
		SessionID: sessionID, RequestID: requestID, StagingConfigID: stagingConfigID,
		Reason: events.ExpiredStaged,
	},
	events.TypeSessionKeepalive: events.SessionKeepalive{
		SessionID: sessionID, RequestID: requestID,
	},
	events.TypeStagingViolation: events.StagingViolation{
		RequestID: requestID, User: "alice", Workspace: "firefox", Zone: "eu",
		Setting: "inject_ssh_keys", SessionID: sessionID,
	},
	events.TypeStagingShortfall: events.StagingShortfall{
		StagingConfigID: stagingConfigID, Zone: "eu", Workspace: "firefox",
		Desired: 5, Current: 2, Reason: "no agent with capacity", Permanent: false,
	},
	events.TypeConfigChanged: events.ConfigChanged{
		Kind: "staging_config", Op: "updated", ID: objectID, Name: "",
		Actor:  events.Actor{Type: events.ActorAPIKey, Name: "deployer"},
		Before: json.RawMessage(`{"id":"` + objectID + `","desired_sessions":2}`),
		After:  json.RawMessage(`{"id":"` + objectID + `","desired_sessions":3}`),
	},
	events.TypeDeadLetter: events.DeadLetter{
		Consumer: "assigner", StreamSequence: 18446744073709551615, Subject: "greenroom.session.requested",
		NumDelivered: 5, Reason: "malformed event", Payload: "not json",
	},
	events.TypeContainerCreated: events.ContainerCreated{
		SessionID: sessionID, RequestID: requestID, StagingConfigID: stagingConfigID,
		Agent: "agent-1", Zone: "eu", ContainerID: "3f2a9c", Image: "greenroom/demo-workspace:latest",
	},
	events.TypeContainerRemoved: events.ContainerRemoved{
		ContainerID: "3f2a9c", Agent: "agent-1", SessionID: sessionID, Cause: events.CauseOrphan,
	},
	events.TypeAuditCheckpoint: events.AuditCheckpoint{
		Checkpoint: 7, FirstSeq: 100, LastSeq: 102, Events: 2, Missing: []int64{101}, Digests: "AAAAAAAAAAABAgMEBQYHCA==",
		PrevChain: strings.Repeat("0", 64), Chain: strings.Repeat("ab", 32),
	},
	events.TypeSessionAssignRan: events.AssignRan{
		SessionID: sessionID, RequestID: requestID, User: "alice", Method: events.AssignMethodExec,
		OK: true, Detail: "assigned to alice", DurationMS: 42,
	},
	events.TypeAgentLifecycle: events.AgentLifecycle{
		Agent: "desktops-eu-3f2b1c", AgentID: agentID, AutoscaleConfig: "desktops-eu",
		From: events.AgentDraining, To: events.AgentDeleting,
		Reason: "drained since 2025-01-02T03:04:05Z with no session left", MachineID: "9c1e4f", Address: "10.0.0.7",
	},
}

// Validator is what libs/bus publishers and consumers expect.
var _ interface {
	Validate(raw []byte) error
	ValidateReceived(raw []byte) error
} = (*events.Validator)(nil)

func newValidator(t *testing.T) *events.Validator {
	t.Helper()
	v, err := events.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

// sample builds a valid event of type typ.
func sample(t *testing.T, typ string) events.Event {
	t.Helper()
	data, ok := samples[typ]
	if !ok {
		t.Fatalf("no sample payload for %s", typ)
	}
	ev, err := events.New(source, typ, data)
	if err != nil {
		t.Fatalf("New(%s): %v", typ, err)
	}
	return ev
}

// mutated returns a valid event of type typ, encoded after f changed it.
func mutated(t *testing.T, typ string, f func(ev, data map[string]any)) []byte {
	t.Helper()
	raw, err := sample(t, typ).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	data, _ := ev["data"].(map[string]any)
	f(ev, data)
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func schemaFiles(t *testing.T) []string {
	t.Helper()
	entries, err := fs.ReadDir(schemas.Events, "events")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestEveryEventTypeHasASchema(t *testing.T) {
	files := schemaFiles(t)
	for _, typ := range events.Types {
		if name := events.SchemaName(typ) + ".json"; !slices.Contains(files, name) {
			t.Errorf("%s has no schema: schemas/events/%s is missing", typ, name)
		}
	}
}

func TestEverySchemaFileIsAnEventType(t *testing.T) {
	for _, name := range schemaFiles(t) {
		found := false
		for _, typ := range events.Types {
			if events.SchemaName(typ)+".json" == name {
				found = true
			}
		}
		if !found {
			t.Errorf("schemas/events/%s matches no type in events.Types", name)
		}
	}
}

func TestEveryEventTypeHasASamplePayload(t *testing.T) {
	if len(samples) != len(events.Types) {
		t.Errorf("%d sample payloads for %d types", len(samples), len(events.Types))
	}
	for _, typ := range events.Types {
		if _, ok := samples[typ]; !ok {
			t.Errorf("no sample payload for %s", typ)
		}
	}
}

// schemaDoc is the part of an event schema the contract tests read.
type schemaDoc struct {
	Schema      string `json:"$schema"`
	ID          string `json:"$id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Required    []string
	Properties  struct {
		Type       struct{ Const string } `json:"type"`
		DataSchema struct{ Const string } `json:"dataschema"`
		Data       struct {
			Required             []string                   `json:"required"`
			Properties           map[string]json.RawMessage `json:"properties"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
		} `json:"data"`
	} `json:"properties"`
}

func readSchema(t *testing.T, typ string) schemaDoc {
	t.Helper()
	b, err := fs.ReadFile(schemas.Events, path.Join("events", events.SchemaName(typ)+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc schemaDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	return doc
}

func TestEverySchemaPinsItsTypeDataSchemaAndID(t *testing.T) {
	for _, typ := range events.Types {
		t.Run(typ, func(t *testing.T) {
			doc := readSchema(t, typ)
			if doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %q, want draft 2020-12", doc.Schema)
			}
			if want := events.SchemaBaseURL + events.SchemaName(typ) + ".json"; doc.ID != want {
				t.Errorf("$id = %q, want %q", doc.ID, want)
			}
			if doc.Properties.Type.Const != typ {
				t.Errorf("type const = %q, want %q", doc.Properties.Type.Const, typ)
			}
			if want := events.DataSchemaURI(typ); doc.Properties.DataSchema.Const != want {
				t.Errorf("dataschema const = %q, want %q", doc.Properties.DataSchema.Const, want)
			}
			if doc.Title == "" || doc.Description == "" {
				t.Error("title and description are required")
			}
			for _, attr := range []string{"specversion", "id", "source", "type", "time", "dataschema", "datacontenttype", "data"} {
				if !slices.Contains(doc.Required, attr) {
					t.Errorf("envelope attribute %s is not required", attr)
				}
			}
		})
	}
}

// TestEverySchemaDataMatchesItsPayloadStruct keeps payloads.go and the
// schemas from drifting: the data properties are the struct's JSON fields,
// and the required ones are exactly those without omitempty.
func TestEverySchemaDataMatchesItsPayloadStruct(t *testing.T) {
	for _, typ := range events.Types {
		t.Run(typ, func(t *testing.T) {
			data := readSchema(t, typ).Properties.Data
			var fields, required []string
			rt := reflect.TypeOf(samples[typ])
			for i := range rt.NumField() {
				name, opts, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
				if name == "-" {
					continue // not in the payload (SessionRequested.Requester: the subject's)
				}
				fields = append(fields, name)
				if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
					required = append(required, name)
				}
			}
			var props []string
			for p := range data.Properties {
				props = append(props, p)
			}
			sort.Strings(fields)
			sort.Strings(required)
			sort.Strings(props)
			got := slices.Sorted(slices.Values(data.Required))
			if !slices.Equal(props, fields) {
				t.Errorf("data properties %v, struct fields %v", props, fields)
			}
			if !slices.Equal(got, required) {
				t.Errorf("data required %v, struct fields without omitempty %v", got, required)
			}
			if data.AdditionalProperties == nil || *data.AdditionalProperties {
				t.Error("data must have additionalProperties: false")
			}
		})
	}
}

func TestValidEventOfEveryTypeValidates(t *testing.T) {
	v := newValidator(t)
	for _, typ := range events.Types {
		t.Run(typ, func(t *testing.T) {
			ev := sample(t, typ)
			if err := v.ValidateEvent(ev); err != nil {
				t.Fatalf("ValidateEvent: %v", err)
			}
			raw, err := ev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(raw); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got, err := events.Decode(raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			payload := reflect.New(reflect.TypeOf(samples[typ]))
			if err := got.DecodeData(payload.Interface()); err != nil {
				t.Fatalf("DecodeData: %v", err)
			}
			if !reflect.DeepEqual(payload.Elem().Interface(), samples[typ]) {
				t.Errorf("payload round trip: got %+v, want %+v", payload.Elem().Interface(), samples[typ])
			}
		})
	}
}

func TestOptionalFieldsMayBeOmitted(t *testing.T) {
	v := newValidator(t)
	cases := map[string]any{
		"staged provision without request_id": events.ProvisionRequested{
			SessionID: sessionID, Workspace: "firefox", Zones: []string{"eu"},
			Origin: "staged", StagingConfigID: stagingConfigID,
		},
		"failure of a request without session": events.SessionFailed{
			RequestID: requestID, Reason: events.ReasonUnknownReference, Detail: "no workspace firefox",
		},
		"failure of a session without request": events.SessionFailed{
			SessionID: sessionID, Reason: events.ReasonContainerGone,
		},
		"destroyed without request or staging config": events.SessionDestroyed{
			SessionID: sessionID, Reason: "api_delete", Cause: events.CauseOther,
		},
		"ready without a known zone search step": events.SessionReady{
			RequestID: requestID, SessionID: sessionID, User: "alice", Workspace: "firefox",
			Zone: "eu", Agent: "agent-1", ContainerID: "3f2a9c", URL: "http://127.0.0.1:32768/", Origin: "staged",
		},
		"assigned by an assigner older than the zone search step": events.SessionAssigned{
			RequestID: requestID, SessionID: sessionID, User: "alice", UserID: userID,
			Workspace: "firefox", Zone: "eu", StagingConfigID: stagingConfigID,
		},
		"on-demand provision by an assigner older than requested_zone": events.ProvisionRequested{
			RequestID: requestID, SessionID: sessionID, Workspace: "firefox", Zones: []string{"eu"}, Origin: "on_demand",
		},
		"container of a staged session": events.ContainerCreated{
			SessionID: sessionID, StagingConfigID: stagingConfigID, Agent: "agent-1", Zone: "eu",
			ContainerID: "3f2a9c", Image: "img",
		},
		"orphan whose label is no session id": events.ContainerRemoved{
			ContainerID: "3f2a9c", Agent: "agent-1", Cause: events.CauseOrphan,
		},
		"assign step that had nothing to run": events.AssignRan{
			SessionID: sessionID, RequestID: requestID, User: "alice", Method: events.AssignMethodNone, OK: true,
		},
		"expired provisioning": events.SessionExpired{
			SessionID: sessionID, Reason: events.ExpiredProvisioning,
		},
		"violation before the session exists": events.StagingViolation{
			RequestID: requestID, User: "alice", Workspace: "firefox", Zone: "eu", Setting: "persistent_profile",
		},
		"new agent, before its machine exists": events.AgentLifecycle{
			Agent: "desktops-eu-3f2b1c", AgentID: agentID, AutoscaleConfig: "desktops-eu", To: events.AgentProvisioning,
			Reason: "1.5 cores, 5632 MiB free, standby is 2 cores, 0 MiB",
		},
		"agent deleted whose machine was never recorded": events.AgentLifecycle{
			Agent: "desktops-eu-3f2b1c", AgentID: agentID, From: events.AgentDeleting, To: events.AgentDeleted,
			Reason: "its machine and DNS record are deleted",
		},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			typ := map[reflect.Type]string{
				reflect.TypeFor[events.ProvisionRequested](): events.TypeProvisionRequested,
				reflect.TypeFor[events.SessionFailed]():      events.TypeSessionFailed,
				reflect.TypeFor[events.SessionDestroyed]():   events.TypeSessionDestroyed,
				reflect.TypeFor[events.SessionExpired]():     events.TypeSessionExpired,
				reflect.TypeFor[events.StagingViolation]():   events.TypeStagingViolation,
				reflect.TypeFor[events.SessionReady]():       events.TypeSessionReady,
				reflect.TypeFor[events.SessionAssigned]():    events.TypeSessionAssigned,
				reflect.TypeFor[events.ContainerCreated]():   events.TypeContainerCreated,
				reflect.TypeFor[events.ContainerRemoved]():   events.TypeContainerRemoved,
				reflect.TypeFor[events.AssignRan]():          events.TypeSessionAssignRan,
				reflect.TypeFor[events.AgentLifecycle]():     events.TypeAgentLifecycle,
			}[reflect.TypeOf(data)]
			ev, err := events.New(source, typ, data)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.ValidateEvent(ev); err != nil {
				t.Errorf("ValidateEvent: %v", err)
			}
		})
	}
}

func TestInvalidEventsFailValidation(t *testing.T) {
	v := newValidator(t)
	cases := []struct {
		rule string
		typ  string
		f    func(ev, data map[string]any)
		want string // in the error message, besides the type
	}{
		{"missing required data field", events.TypeSessionRequested,
			func(_, d map[string]any) { delete(d, "workspace") }, "/data"},
		{"extra data field", events.TypeSessionRequested,
			func(_, d map[string]any) { d["priority"] = 1 }, "/data"},
		{"type not the schema's const", events.TypeSessionRequested,
			func(e, _ map[string]any) { e["type"] = events.TypeSessionReady }, "/dataschema"},
		{"dataschema of another type", events.TypeSessionRequested,
			func(e, _ map[string]any) { e["dataschema"] = events.DataSchemaURI(events.TypeSessionReady) }, "/dataschema"},
		{"dataschema of another version", events.TypeSessionRequested,
			func(e, _ map[string]any) { e["dataschema"] = "urn:greenroom:schema:session.requested:2" }, "/dataschema"},
		{"wrong specversion", events.TypeSessionRequested,
			func(e, _ map[string]any) { e["specversion"] = "0.3" }, "/specversion"},
		{"wrong datacontenttype", events.TypeSessionRequested,
			func(e, _ map[string]any) { e["datacontenttype"] = "text/plain" }, "/datacontenttype"},
		{"empty id", events.TypeSessionRequested,
			func(e, _ map[string]any) { e["id"] = "" }, "/id"},
		{"missing source", events.TypeSessionRequested,
			func(e, _ map[string]any) { delete(e, "source") }, "source"},
		{"time not a date-time", events.TypeSessionRequested,
			func(e, _ map[string]any) { e["time"] = "yesterday" }, "/time"},
		{"data not an object", events.TypeSessionRequested,
			func(e, _ map[string]any) { e["data"] = "x" }, "/data"},
		{"extension attribute with an invalid name", events.TypeSessionRequested,
			func(e, _ map[string]any) { e["Trace_Parent"] = "x" }, "Trace_Parent"},
		{"empty request_id", events.TypeSessionRequested,
			func(_, d map[string]any) { d["request_id"] = "" }, "/data/request_id"},
		{"request_id over 200 characters", events.TypeSessionRequested,
			func(_, d map[string]any) { d["request_id"] = strings.Repeat("r", 201) }, "/data/request_id"},
		{"bad failure reason", events.TypeSessionFailed,
			func(_, d map[string]any) { d["reason"] = "oops" }, "/data/reason"},
		{"bad expiry reason", events.TypeSessionExpired,
			func(_, d map[string]any) { d["reason"] = events.ReasonNoCapacity }, "/data/reason"},
		{"bad origin", events.TypeSessionReady,
			func(_, d map[string]any) { d["origin"] = "warm" }, "/data/origin"},
		{"bad violation setting", events.TypeStagingViolation,
			func(_, d map[string]any) { d["setting"] = "allow_audio" }, "/data/setting"},
		{"bad config kind", events.TypeConfigChanged,
			func(_, d map[string]any) { d["kind"] = "session" }, "/data/kind"},
		{"bad config op", events.TypeConfigChanged,
			func(_, d map[string]any) { d["op"] = "renamed" }, "/data/op"},
		{"non-uuid session_id", events.TypeSessionAssigned,
			func(_, d map[string]any) { d["session_id"] = "session-1" }, "/data/session_id"},
		{"non-uuid user_id", events.TypeSessionAssigned,
			func(_, d map[string]any) { d["user_id"] = "alice" }, "/data/user_id"},
		{"non-uuid staging_config_id", events.TypeSessionStaged,
			func(_, d map[string]any) { d["staging_config_id"] = "42" }, "/data/staging_config_id"},
		{"non-uuid config id", events.TypeConfigChanged,
			func(_, d map[string]any) { d["id"] = "eu" }, "/data/id"},
		{"actor without its type", events.TypeConfigChanged,
			func(_, d map[string]any) { d["actor"] = map[string]any{"name": "deployer"} }, "/data/actor"},
		{"bad actor type", events.TypeConfigChanged,
			func(_, d map[string]any) { d["actor"] = map[string]any{"type": "root"} }, "/data/actor/type"},
		{"API key actor without its name", events.TypeConfigChanged,
			func(_, d map[string]any) { d["actor"] = map[string]any{"type": "api_key"} }, "/data/actor"},
		{"admin token actor with a name", events.TypeConfigChanged,
			func(_, d map[string]any) { d["actor"] = map[string]any{"type": "admin_token", "name": "x"} }, "/data/actor"},
		{"config object that is not an object", events.TypeConfigChanged,
			func(_, d map[string]any) { d["after"] = "desired_sessions: 3" }, "/data/after"},
		{"creation with a before", events.TypeConfigChanged,
			func(_, d map[string]any) { d["op"] = "created" }, "/data"},
		{"deletion with an after", events.TypeConfigChanged,
			func(_, d map[string]any) { d["op"] = "deleted" }, "/data"},
		{"no zones to provision in", events.TypeProvisionRequested,
			func(_, d map[string]any) { d["zones"] = []any{} }, "/data/zones"},
		{"zone that is not a string", events.TypeProvisionRequested,
			func(_, d map[string]any) { d["zones"] = []any{1} }, "/data/zones/0"},
		{"on-demand provision without request_id", events.TypeProvisionRequested,
			func(_, d map[string]any) { delete(d, "request_id") }, "request_id"},
		{"staged provision without staging_config_id", events.TypeProvisionRequested,
			func(_, d map[string]any) { d["origin"] = "staged" }, "staging_config_id"},
		{"failure about neither a request nor a session", events.TypeSessionFailed,
			func(_, d map[string]any) { delete(d, "request_id"); delete(d, "session_id") }, "/data"},
		{"ready without a URL", events.TypeSessionReady,
			func(_, d map[string]any) { d["url"] = "" }, "/data/url"},
		{"negative shortfall count", events.TypeStagingShortfall,
			func(_, d map[string]any) { d["current"] = -1 }, "/data/current"},
		{"fractional stream sequence", events.TypeDeadLetter,
			func(_, d map[string]any) { d["stream_sequence"] = 1.5 }, "/data/stream_sequence"},
		{"bad destroy cause", events.TypeSessionDestroyed,
			func(_, d map[string]any) { d["cause"] = "pool_shrink" }, "/data/cause"},
		{"zone search step 0", events.TypeSessionAssigned,
			func(_, d map[string]any) { d["zone_search_step"] = 0 }, "/data/zone_search_step"},
		{"fractional zone search step", events.TypeSessionReady,
			func(_, d map[string]any) { d["zone_search_step"] = 1.5 }, "/data/zone_search_step"},
		{"empty requested zone", events.TypeProvisionRequested,
			func(_, d map[string]any) { d["requested_zone"] = "" }, "/data/requested_zone"},
		{"container created without an image", events.TypeContainerCreated,
			func(_, d map[string]any) { delete(d, "image") }, "image"},
		{"container removed for another cause", events.TypeContainerRemoved,
			func(_, d map[string]any) { d["cause"] = events.CauseDeleted }, "/data/cause"},
		{"bad assign method", events.TypeSessionAssignRan,
			func(_, d map[string]any) { d["method"] = "ssh" }, "/data/method"},
		{"assign result that is not a boolean", events.TypeSessionAssignRan,
			func(_, d map[string]any) { d["ok"] = "yes" }, "/data/ok"},
		{"negative assign duration", events.TypeSessionAssignRan,
			func(_, d map[string]any) { d["duration_ms"] = -1 }, "/data/duration_ms"},
		{"assign detail over 1000 characters", events.TypeSessionAssignRan,
			func(_, d map[string]any) { d["detail"] = strings.Repeat("x", 1001) }, "/data/detail"},
		{"agent lifecycle that is not one", events.TypeAgentLifecycle,
			func(_, d map[string]any) { d["to"] = "stopped" }, "/data/to"},
		{"agent lifecycle step without its reason", events.TypeAgentLifecycle,
			func(_, d map[string]any) { d["reason"] = "" }, "/data/reason"},
		{"non-uuid agent_id", events.TypeAgentLifecycle,
			func(_, d map[string]any) { d["agent_id"] = "agent-1" }, "/data/agent_id"},
		{"agent leaving no lifecycle for another than provisioning", events.TypeAgentLifecycle,
			func(_, d map[string]any) { delete(d, "from") }, "/data"},
		{"new agent that had a lifecycle", events.TypeAgentLifecycle,
			func(_, d map[string]any) { d["to"] = events.AgentProvisioning }, "/data"},
		{"new agent whose from is given as none", events.TypeAgentLifecycle,
			func(_, d map[string]any) { d["from"] = "none"; d["to"] = events.AgentProvisioning }, "/data"},
		{"agent leaving deleted", events.TypeAgentLifecycle,
			func(_, d map[string]any) { d["from"] = events.AgentDeleted }, "/data/from"},
		{"agent deleted without being deleting", events.TypeAgentLifecycle,
			func(_, d map[string]any) { d["from"] = events.AgentActive; d["to"] = events.AgentDeleted }, "/data"},
		{"agent drained from provisioning", events.TypeAgentLifecycle,
			func(_, d map[string]any) { d["from"] = events.AgentProvisioning; d["to"] = events.AgentDraining }, "/data"},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			raw := mutated(t, tc.typ, tc.f)
			err := v.Validate(raw)
			if err == nil {
				t.Fatalf("validated: %s", raw)
			}
			t.Log(err)
			if !errors.Is(err, events.ErrSchema) || !errors.Is(err, events.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrSchema and ErrMalformed", err)
			}
			typ := tc.typ
			var ev map[string]any
			_ = json.Unmarshal(raw, &ev)
			if s, ok := ev["type"].(string); ok {
				typ = s
			}
			if msg := err.Error(); !strings.Contains(msg, typ) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q should name the type %s and %q", msg, typ, tc.want)
			}
		})
	}
}

func TestValidateRejectsWhatHasNoSchema(t *testing.T) {
	v := newValidator(t)
	cases := map[string]string{
		"not JSON":          `{"specversion":`,
		"trailing data":     `{} {}`,
		"not an object":     `["greenroom.session.requested"]`,
		"missing type":      `{"specversion":"1.0","id":"1","source":"s","data":{}}`,
		"non-string type":   `{"specversion":"1.0","id":"1","source":"s","type":7,"data":{}}`,
		"unknown type":      `{"specversion":"1.0","id":"1","source":"s","type":"greenroom.session.renamed","data":{}}`,
		"type without case": `{"specversion":"1.0","id":"1","source":"s","TYPE":"greenroom.session.requested","data":{}}`,
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			err := v.Validate([]byte(raw))
			if !errors.Is(err, events.ErrSchema) {
				t.Fatalf("Validate = %v, want ErrSchema", err)
			}
		})
	}
	if err := v.Validate([]byte(cases["unknown type"])); !strings.Contains(err.Error(), "greenroom.session.renamed") {
		t.Errorf("unknown type error %q should name the type", err)
	}
}

func TestValidateEventRejectsAnEmptyEvent(t *testing.T) {
	v := newValidator(t)
	if err := v.ValidateEvent(events.Event{}); !errors.Is(err, events.ErrSchema) {
		t.Fatalf("ValidateEvent(Event{}) = %v, want ErrSchema", err)
	}
	ev := sample(t, events.TypeSessionRequested)
	ev.Data = json.RawMessage(`null`)
	if err := v.ValidateEvent(ev); !errors.Is(err, events.ErrSchema) {
		t.Fatalf("ValidateEvent with null data = %v, want ErrSchema", err)
	}
}

func TestExtensionAttributesAreAllowed(t *testing.T) {
	v := newValidator(t)
	raw := mutated(t, events.TypeSessionRequested, func(e, _ map[string]any) {
		e["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	})
	if err := v.Validate(raw); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestDecodeRejectsMalformedEnvelopes(t *testing.T) {
	valid := func(f func(e map[string]any)) string {
		return string(mutated(t, events.TypeSessionRequested, func(e, _ map[string]any) { f(e) }))
	}
	cases := map[string]string{
		"non-JSON":            `not json`,
		"truncated JSON":      `{"specversion":"1.0"`,
		"wrong specversion":   valid(func(e map[string]any) { e["specversion"] = "0.3" }),
		"missing specversion": valid(func(e map[string]any) { delete(e, "specversion") }),
		"missing id":          valid(func(e map[string]any) { delete(e, "id") }),
		"empty id":            valid(func(e map[string]any) { e["id"] = "" }),
		"missing type":        valid(func(e map[string]any) { delete(e, "type") }),
		"missing data":        valid(func(e map[string]any) { delete(e, "data") }),
		"null data":           valid(func(e map[string]any) { e["data"] = nil }),
		"time not a time":     valid(func(e map[string]any) { e["time"] = "yesterday" }),
		"missing source":      valid(func(e map[string]any) { delete(e, "source") }),
		"data not JSON":       valid(func(e map[string]any) { e["datacontenttype"] = "text/plain" }),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := events.Decode([]byte(raw)); !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("Decode(%s) = %v, want ErrMalformed", raw, err)
			}
		})
	}
}

// A writer one version ahead adds a field: readers ignore it (issue 15).
func TestDecodeDataIgnoresUnknownFields(t *testing.T) {
	ev := sample(t, events.TypeSessionRequested)
	ev.Data = json.RawMessage(`{"request_id":"r","user":"u","workspace":"w","zone":"z","extra":1,"nested":{"a":[1]}}`)
	var p events.SessionRequested
	if err := ev.DecodeData(&p); err != nil {
		t.Fatalf("DecodeData = %v", err)
	}
	if p != (events.SessionRequested{RequestID: "r", User: "u", Workspace: "w", Zone: "z"}) {
		t.Fatalf("decoded %+v", p)
	}
	ev.Data = json.RawMessage(`{"request_id":"r","user":1}`)
	if err := ev.DecodeData(&p); !errors.Is(err, events.ErrMalformed) {
		t.Fatalf("DecodeData of a mistyped field = %v, want ErrMalformed", err)
	}
}

func TestNewStampsTheEnvelope(t *testing.T) {
	ev := sample(t, events.TypeSessionRequested)
	if ev.SpecVersion != "1.0" || ev.ID == "" || ev.Source != source ||
		ev.Type != events.TypeSessionRequested || ev.Time.IsZero() ||
		ev.DataSchema != "urn:greenroom:schema:session.requested:1" ||
		ev.DataContentType != "application/json" {
		t.Errorf("envelope = %+v", ev)
	}
	if other := sample(t, events.TypeSessionRequested); other.ID == ev.ID {
		t.Errorf("two events share id %s", ev.ID)
	}
}

func TestSchemaNamesAndDataSchemaURIs(t *testing.T) {
	if got := events.SchemaName(events.TypeDeadLetter); got != "dead" {
		t.Errorf("SchemaName(dead) = %q", got)
	}
	if got := events.DataSchemaURI(events.TypeConfigChanged); got != "urn:greenroom:schema:config.changed:1" {
		t.Errorf("DataSchemaURI(config.changed) = %q", got)
	}
}

func TestValidatorIsSafeForConcurrentUse(t *testing.T) {
	v := newValidator(t)
	raws := make([][]byte, 0, len(events.Types))
	for _, typ := range events.Types {
		raw, err := sample(t, typ).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	bad := mutated(t, events.TypeSessionAssigned, func(_, d map[string]any) { d["session_id"] = "x" })
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(raws))
	for range 8 {
		wg.Go(func() {
			for _, raw := range raws {
				if err := v.Validate(raw); err != nil {
					errs <- err
				}
				if err := v.Validate(bad); err == nil {
					errs <- errors.New("invalid event validated")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRequesterSubjects(t *testing.T) {
	if got := events.SubjectFor(events.TypeSessionReady, "billing"); got != "greenroom.session.ready.billing" {
		t.Errorf("SubjectFor(ready, billing) = %q", got)
	}
	if got := events.SubjectFor(events.TypeSessionFailed, ""); got != events.TypeSessionFailed {
		t.Errorf("SubjectFor(failed, \"\") = %q", got)
	}
	for subject, want := range map[string]string{
		"greenroom.session.requested":         "",
		"greenroom.session.requested.billing": "billing",
		"greenroom.session.requestedx":        "",
		"greenroom.session.ready.billing":     "",
	} {
		if got := events.RequesterOf(subject); got != want {
			t.Errorf("RequesterOf(%q) = %q, want %q", subject, got, want)
		}
	}
	for name, want := range map[string]bool{"billing": true, "svc-a_2": true, "": false, "a.b": false, "a*": false, "a>": false, "a b": false} {
		if got := events.ValidRequester(name); got != want {
			t.Errorf("ValidRequester(%q) = %v", name, got)
		}
	}
}

// Events written before the audit's fields existed (a rolling upgrade, a
// row left in an outbox) are still read: a config.changed without its
// actor, a session.destroyed without its cause.
func TestEventsFromBeforeTheAuditFieldsAreStillRead(t *testing.T) {
	v := newValidator(t)
	for typ, drop := range map[string]string{events.TypeConfigChanged: "actor", events.TypeSessionDestroyed: "cause"} {
		ev := sample(t, typ)
		var data map[string]any
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		delete(data, drop)
		ev.Data, _ = json.Marshal(data)
		raw, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := v.ValidateReceived(raw); err != nil {
			t.Errorf("%s without %s: %v", typ, drop, err)
		}
	}
}
