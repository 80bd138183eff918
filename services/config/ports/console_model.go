package ports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"

	"github.com/greenroom-dev/greenroom/schemas"
)

// The admin console's views and forms. The words are the seeds' (the Kasm
// documentation's click paths: "Staging", "Create New Config", "Desired
// Sessions", "Infrastructure" → "Pools" → "Add", "Assign"), so that an
// administrator following that documentation finds them. The forms are
// made from the API's own description, schemas/api/openapi.yaml: one input
// per property of a resource's create body, of the property's type, with
// its description as help, disabled on edit when the update body lacks it;
// so a setting the API gains appears in the console without a second list
// to keep.

// consoleView is one page of the console: a table of one collection of the
// API, with its create form.
type consoleView struct {
	// Route is the page's address after #/ (e.g. "staging").
	Route string
	// Nav is its navigation item; Menu, when set, is the drop-down it is
	// in.
	Nav, Menu string
	// Title heads the page.
	Title string
	// Collection is the API collection under /api/v1/, Key the field that
	// names an item in its paths, Item what one item is called.
	Collection, Key, Item string
	// Create labels the create button ("" when items are not created
	// here); Edit and Delete say whether rows have those actions.
	Create       string
	Edit, Delete bool
	// Destroy labels the delete action of rows when it is not "Delete".
	Destroy string
	// Events are the prefixes of the bus event types that change the page.
	Events []string
	// Columns are the table's columns.
	Columns []consoleColumn
	// Schema names the create and update bodies' schemas (Schema+"Create",
	// Schema+"Update") the form is made from.
	Schema string
	// Form is the create/edit form, made from Schema.
	Form []consoleField
}

// consoleColumn is one column of a view's table: the field it shows, and
// how (Format: "" as is, "time", "bool", "list", "count", "status",
// "user", "link").
type consoleColumn struct {
	Label, Field, Format string
}

// consoleField is one input of a form.
type consoleField struct {
	// Name is the JSON field; Label the words beside the input; Help the
	// API's description of the field.
	Name, Label, Help string
	// Input is how it is entered: text, number, checkbox, select (Options),
	// ref (a select of the items of Ref, an API collection, filtered by
	// RefFilter "field=value"), refs (checkboxes of several), list (one
	// value a line), json (a JSON value) or password.
	Input           string
	Options         []string
	Ref, RefFilter  string
	Step            string // number inputs: "1" or "any"
	Required        bool   // in the create body's required list
	Nullable        bool   // null clears it
	Editable        bool   // in the update body
	Placeholder     string // an example
	DefaultChecked  bool   // checkbox default on create
	DefaultSelected string // select default on create
}

// consoleLabels are the labels that are not the field's words in title
// case.
var consoleLabels = map[string]string{
	"expiration_hours":         "Expiration (Hours)",
	"memory_mb":                "Memory (MiB)",
	"ssh_public_keys":          "SSH Public Keys",
	"internal_address":         "Internal Address",
	"readiness_path":           "Readiness Path",
	"max_sessions":             "Max Sessions",
	"free_memory_mb":           "Free Memory (MiB)",
	"last_heartbeat_at":        "Last Heartbeat",
	"on_demand_reason":         "On Demand Reason",
	"url":                      "URL",
	"server_pool":              "Server Pool",
	"docker_exec_config":       "Docker Exec Config",
	"inject_ssh_keys":          "Inject SSH Keys",
	"vm_provider":              "VM Provider",
	"dns_provider":             "DNS Provider",
	"gpus":                     "GPUs",
	"standby_memory_mb":        "Standby Memory (MiB)",
	"standby_gpus":             "Standby GPUs",
	"agent_memory_mb_override": "Agent Memory Override (MiB)",
}

// consoleRefs are the fields that name an item of another collection.
var consoleRefs = map[string]struct{ collection, filter string }{
	"zone":              {"zones", ""},
	"workspace":         {"workspaces", ""},
	"pool":              {"pools", ""},
	"server_pool":       {"pools", "type=server"},
	"web_filter_policy": {"web-filter-policies", ""},
	"groups":            {"groups", ""},
	"assigned_user":     {"users", ""},
	"vm_provider":       {"vm-providers", ""},
	"dns_provider":      {"dns-providers", ""},
}

// genericRefHelp is the description of NameRef, which says no more than
// the choices of a reference do.
const genericRefHelp = "The name of another resource."

// consoleSchemaRefs are the references whose choices depend on the
// resource: an agent joins a Docker agent pool, a server a server pool.
var consoleSchemaRefs = map[string]map[string]string{
	"Agent":           {"pool": "type=docker_agent"},
	"Server":          {"pool": "type=server"},
	"AutoscaleConfig": {"pool": "type=docker_agent"},
}

// consoleViews are the console's pages, in navigation order.
func consoleViews() []consoleView {
	configEvents := []string{"greenroom.config."}
	sessionEvents := []string{"greenroom.session.", "greenroom.staging.", "greenroom.config."}
	return []consoleView{
		{Route: "staging", Nav: "Staging", Title: "Staging", Collection: "staging-configs", Key: "id", Item: "Config",
			Create: "Create New Config", Edit: true, Delete: true, Schema: "StagingConfig", Events: sessionEvents,
			Columns: []consoleColumn{{"Zone", "zone", ""}, {"Workspace", "workspace", ""},
				{"Desired Sessions", "desired_sessions", ""}, {"Schedule", "schedule", "count"},
				{"Effective Desired Sessions", "effective_desired_sessions", ""}, {"Current Sessions", "current_sessions", ""},
				{"Expiration (Hours)", "expiration_hours", ""}, {"Status", "status", "status"},
				{"Shortfall Reason", "last_error", ""}, {"Since", "last_error_at", "time"}}},
		{Route: "zones", Nav: "Zones", Title: "Zones", Collection: "zones", Key: "name", Item: "Zone",
			Create: "Add", Edit: true, Delete: true, Schema: "Zone", Events: configEvents,
			Columns: []consoleColumn{{"Name", "name", ""}, {"Allow Origin Domain", "allow_origin_domain", ""},
				{"Upstream Auth Address", "upstream_auth_address", ""}, {"Search Alternate Zones", "search_alternate_zones", "bool"},
				{"Load Balancing", "load_balancing", ""}, {"Priority", "priority", ""}}},
		{Route: "pools", Menu: "Infrastructure", Nav: "Pools", Title: "Pools", Collection: "pools", Key: "name", Item: "Pool",
			Create: "Add", Edit: true, Delete: true, Schema: "Pool", Events: configEvents,
			Columns: []consoleColumn{{"Name", "name", "link"}, {"Type", "type", ""}, {"Server Assignment", "server_assignment", "bool"},
				{"Labels", "labels", "list"}, {"Members", "members", "count"}, {"Workspaces", "workspaces", "list"}}},
		{Route: "agents", Menu: "Infrastructure", Nav: "Docker Agents", Title: "Docker Agents", Collection: "agents", Key: "name", Item: "Docker Agent",
			Create: "Add", Edit: true, Delete: true, Schema: "Agent", Events: sessionEvents,
			Columns: []consoleColumn{{"Name", "name", ""}, {"Zone", "zone", ""}, {"Pool", "pool", ""},
				{"Docker Endpoint", "docker_endpoint", ""}, {"Enabled", "enabled", "bool"}, {"Sessions", "sessions", ""},
				{"Free Cores", "free_cores", ""}, {"Free Memory (MiB)", "free_memory_mb", ""}, {"Last Heartbeat", "last_heartbeat_at", "time"},
				{"Lifecycle", "lifecycle", ""}, {"AutoScale Config", "autoscale_config", ""}}},
		{Route: "autoscale", Menu: "Infrastructure", Nav: "AutoScale", Title: "All AutoScale Configs", Collection: "autoscale-configs", Key: "name", Item: "AutoScale Config",
			Create: "Add", Edit: true, Delete: true, Schema: "AutoscaleConfig", Events: sessionEvents,
			Columns: []consoleColumn{{"Name", "name", ""}, {"Pool", "pool", ""}, {"Deployment Zone", "zone", ""}, {"Enabled", "enabled", "bool"},
				{"Standby Cores", "standby_cores", ""}, {"Standby Memory (MiB)", "standby_memory_mb", ""}, {"Min Agents", "min_agents", ""},
				{"Max Agents", "max_agents", ""}, {"Agents", "agents", "count"}, {"Last Decision", "last_decision", ""},
				{"Last Error", "last_error", ""}}},
		{Route: "vm-providers", Menu: "Infrastructure", Nav: "VM Providers", Title: "All VM Provider Configs", Collection: "vm-providers", Key: "name", Item: "VM Provider",
			Create: "Add", Edit: true, Delete: true, Schema: "VMProvider", Events: configEvents,
			Columns: []consoleColumn{{"Name", "name", ""}, {"Type", "type", ""}, {"Secrets Set", "secrets_set", "list"}, {"CA Fingerprint", "ca_fingerprint", ""}}},
		{Route: "dns-providers", Menu: "Infrastructure", Nav: "DNS Providers", Title: "All DNS Provider Configs", Collection: "dns-providers", Key: "name", Item: "DNS Provider",
			Create: "Add", Edit: true, Delete: true, Schema: "DNSProvider", Events: configEvents,
			Columns: []consoleColumn{{"Name", "name", ""}, {"Type", "type", ""}, {"Secrets Set", "secrets_set", "list"}}},
		{Route: "servers", Menu: "Infrastructure", Nav: "Servers", Title: "Servers", Collection: "servers", Key: "name", Item: "Server",
			Create: "Add", Edit: true, Delete: true, Schema: "Server", Events: sessionEvents,
			Columns: []consoleColumn{{"Name", "name", ""}, {"Zone", "zone", ""}, {"Pool", "pool", ""}, {"Address", "address", ""},
				{"Max Sessions", "max_sessions", ""}, {"Enabled", "enabled", "bool"}, {"Assigned User", "assigned_user", ""}, {"Sessions", "sessions", ""}}},
		{Route: "workspaces", Nav: "Workspaces", Title: "Workspaces", Collection: "workspaces", Key: "name", Item: "Workspace",
			Create: "Add", Edit: true, Delete: true, Schema: "Workspace", Events: configEvents,
			Columns: []consoleColumn{{"Name", "name", ""}, {"Image", "image", ""}, {"Cores", "cores", ""}, {"Memory (MiB)", "memory_mb", ""},
				{"Enabled", "enabled", "bool"}, {"Server Pool", "server_pool", ""}, {"Web Filter Policy", "web_filter_policy", ""}, {"Revision", "revision", ""}}},
		{Route: "groups", Nav: "Groups", Title: "Groups", Collection: "groups", Key: "name", Item: "Group",
			Create: "Add", Edit: true, Delete: true, Schema: "Group", Events: configEvents,
			Columns: []consoleColumn{{"Name", "name", ""}, {"Priority", "priority", ""}, {"Allow Audio", "allow_audio", "bool"},
				{"Allow Clipboard Down", "allow_clipboard_down", "bool"}, {"Allow Clipboard Up", "allow_clipboard_up", "bool"},
				{"Allow Downloads", "allow_downloads", "bool"}, {"Allow Microphone", "allow_microphone", "bool"},
				{"Allow Uploads", "allow_uploads", "bool"}, {"Allow Gamepad", "allow_gamepad", "bool"},
				{"Session Time Limit", "session_time_limit", ""}, {"Web Filter Policy", "web_filter_policy", ""}}},
		{Route: "users", Nav: "Users", Title: "Users", Collection: "users", Key: "username", Item: "User",
			Create: "Add", Edit: true, Delete: true, Schema: "User", Events: configEvents,
			Columns: []consoleColumn{{"Username", "username", ""}, {"Groups", "groups", "list"}, {"Password", "has_password", "bool"},
				{"SSH Public Keys", "ssh_public_keys", "count"}}},
		{Route: "web-filter-policies", Nav: "Web Filters", Title: "Web Filter Policies", Collection: "web-filter-policies", Key: "name", Item: "Web Filter Policy",
			Create: "Add", Edit: true, Delete: true, Schema: "WebFilterPolicy", Events: configEvents,
			Columns: []consoleColumn{{"Name", "name", ""}, {"Default Allow", "default_allow", "bool"},
				{"Allowed Domains", "allowed_domains", "list"}, {"Denied Domains", "denied_domains", "list"}}},
		{Route: "sessions", Nav: "Sessions", Title: "Sessions", Collection: "sessions", Key: "id", Item: "Session",
			Destroy: "Destroy", Events: sessionEvents,
			Columns: []consoleColumn{{"Created", "created_at", "time"}, {"User", "user", "user"}, {"Workspace", "workspace", ""},
				{"Zone", "zone", ""}, {"Agent", "agent", ""}, {"Server", "server", ""}, {"Origin", "origin", ""},
				{"On Demand Reason", "on_demand_reason", ""}, {"Status", "status", "status"}, {"Expires", "expires_at", "time"}}},
		{Route: "violations", Nav: "Violations", Title: "Violations", Collection: "violations", Key: "id", Item: "Violation",
			Events: []string{"greenroom.staging.violation"},
			Columns: []consoleColumn{{"Time", "created_at", "time"}, {"User", "user", ""}, {"Workspace", "workspace", ""},
				{"Setting", "setting", ""}, {"Session", "session_id", ""}}},
	}
}

// buildConsole makes the forms of views from the API description.
func buildConsole(ctx context.Context) ([]consoleView, error) {
	doc, err := openapi3.NewLoader().LoadFromData(schemas.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("loading openapi.yaml for the console: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not valid OpenAPI: %w", err)
	}
	orders, err := propertyOrders(schemas.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("reading openapi.yaml's property order: %w", err)
	}
	views := consoleViews()
	for i := range views {
		v := &views[i]
		if v.Schema == "" {
			continue
		}
		create, ok := doc.Components.Schemas[v.Schema+"Create"]
		if !ok {
			return nil, fmt.Errorf("openapi.yaml has no schema %sCreate for the console's %s form", v.Schema, v.Title)
		}
		var update *openapi3.Schema
		if u, ok := doc.Components.Schemas[v.Schema+"Update"]; ok {
			update = u.Value
		}
		v.Form = formOf(create.Value, update, orders[v.Schema+"Create"])
		for i, f := range v.Form {
			if filter, ok := consoleSchemaRefs[v.Schema][f.Name]; ok {
				v.Form[i].RefFilter = filter
			}
		}
	}
	return views, nil
}

// formOf makes a form's fields from a create body's schema, in its order
// of properties (the order openapi.yaml lists them in).
func formOf(create, update *openapi3.Schema, names []string) []consoleField {
	fields := make([]consoleField, 0, len(names))
	for _, name := range names {
		s := resolved(create.Properties[name])
		f := consoleField{
			Name:     name,
			Label:    labelOf(name),
			Help:     firstSentence(create.Properties[name].Value.Description),
			Required: slices.Contains(create.Required, name),
			Nullable: s.Nullable || create.Properties[name].Value.Nullable,
		}
		if update != nil {
			_, f.Editable = update.Properties[name]
		}
		if ex, ok := s.Example.(string); ok {
			f.Placeholder = ex
		}
		ref, isRef := consoleRefs[name]
		switch {
		case s.WriteOnly && s.Type.Is("string"):
			f.Input = "password"
		case s.WriteOnly:
			// Secrets as a JSON object (a provider's): never shown, so
			// empty on Edit, and left as they are unless given.
			f.Input, f.Placeholder = "json", "unchanged when empty"
		case isRef && s.Type.Is("array"):
			f.Help = "" // the choices say it
			f.Input, f.Ref, f.RefFilter = "refs", ref.collection, ref.filter
		case isRef:
			f.Input, f.Ref, f.RefFilter = "ref", ref.collection, ref.filter
			if f.Help == genericRefHelp {
				f.Help = ""
			}
		case s.Type.Is("boolean"):
			f.Input = "checkbox"
			f.DefaultChecked, _ = s.Default.(bool)
		case s.Type.Is("integer"):
			f.Input, f.Step = "number", "1"
		case s.Type.Is("number"):
			f.Input, f.Step = "number", "any"
		case s.Type.Is("string") && len(s.Enum) > 0:
			f.Input = "select"
			for _, e := range s.Enum {
				f.Options = append(f.Options, fmt.Sprint(e))
			}
			f.DefaultSelected, _ = s.Default.(string)
		case s.Type.Is("string"):
			f.Input = "text"
		case s.Type.Is("array") && s.Items != nil && resolved(s.Items).Type.Is("string"):
			f.Input = "list"
		default: // objects, maps and the rest: JSON
			f.Input = "json"
			if s.Example != nil {
				f.Placeholder = exampleJSON(s.Example)
			}
		}
		fields = append(fields, f)
	}
	return fields
}

// resolved is the schema of a property, through one allOf (a $ref with a
// description of its own).
func resolved(ref *openapi3.SchemaRef) *openapi3.Schema {
	s := ref.Value
	if len(s.AllOf) == 1 && s.Type == nil {
		inner := *s.AllOf[0].Value
		inner.Nullable = inner.Nullable || s.Nullable
		if s.Description != "" {
			inner.Description = s.Description
		}
		return &inner
	}
	return s
}

// propertyOrders reads, for each schema of the document's components,
// the names of its properties in the order the YAML lists them
// (kin-openapi keeps them in a map).
func propertyOrders(doc []byte) (map[string][]string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	child := func(n *yaml.Node, key string) *yaml.Node {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
		return nil
	}
	var top *yaml.Node
	if len(root.Content) > 0 {
		top = root.Content[0]
	}
	schemas := child(child(top, "components"), "schemas")
	if schemas == nil {
		return nil, errors.New("no components.schemas")
	}
	orders := map[string][]string{}
	for i := 0; i+1 < len(schemas.Content); i += 2 {
		props := child(schemas.Content[i+1], "properties")
		if props == nil {
			continue
		}
		var names []string
		for j := 0; j+1 < len(props.Content); j += 2 {
			names = append(names, props.Content[j].Value)
		}
		orders[schemas.Content[i].Value] = names
	}
	return orders, nil
}

// labelOf is the words of a field in title case ("allow_origin_domain":
// "Allow Origin Domain"), or its entry of consoleLabels.
func labelOf(field string) string {
	if l, ok := consoleLabels[field]; ok {
		return l
	}
	words := strings.Split(field, "_")
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// firstSentence shortens a description to its first sentence, as help
// under an input.
func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// exampleJSON is an example value as the JSON to type.
func exampleJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
