package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/greenroom-dev/greenroom/schemas"
)

// kind is one kind of configuration resource of the admin API, as
// `greenroom apply`, `get` and `delete` name it.
type kind struct {
	// Name is the kind in documents (`kind: zone`) and on the command line.
	Name string
	// Plural is the API's collection (/api/v1/<Plural>), also accepted on
	// the command line.
	Plural string
	// Schema is the name of the API's schema of the resource in
	// openapi.yaml; <Schema>Create and <Schema>Update are its bodies.
	Schema string
	// Key names the fields that identify a resource of the kind: its name,
	// or for a staging config, which has none, its zone and workspace.
	Key []string
	// Columns are the fields `get -o table` shows after the key.
	Columns []string
	// Applied says whether apply and `get all` cover the kind. API keys do
	// not: a key's secret is shown once, when the key is created, so a file
	// cannot recreate one and `get` cannot show one.
	Applied bool
	// Managed, when set, tells the resources of the kind Greenroom makes
	// and removes itself (an agent an autoscale config made, or one whose
	// machine is gone): they are not configuration, so yaml and json
	// documents, apply and prune leave them out.
	Managed func(obj map[string]any) bool
}

// configured drops from objs the resources k's Managed tells.
func (k *kind) configured(objs []map[string]any) []map[string]any {
	if k.Managed == nil {
		return objs
	}
	return slices.DeleteFunc(slices.Clone(objs), k.Managed)
}

// kinds lists every kind in the order apply creates them: a resource comes
// after those it refers to by name (servers name their assigned user,
// users their groups, groups and workspaces a web filter policy, staging
// configs a zone and a workspace, autoscale configs a pool, a zone and
// providers). Pruning deletes in the reverse order.
var kinds = []*kind{
	{Name: "zone", Plural: "zones", Schema: "Zone", Key: []string{"name"}, Applied: true,
		Columns: []string{"priority", "search_alternate_zones", "allow_origin_domain", "upstream_auth_address", "load_balancing"}},
	{Name: "pool", Plural: "pools", Schema: "Pool", Key: []string{"name"}, Applied: true,
		Columns: []string{"type", "server_assignment", "labels", "workspaces"}},
	{Name: "vm-provider", Plural: "vm-providers", Schema: "VMProvider", Key: []string{"name"}, Applied: true,
		Columns: []string{"type", "settings", "secrets_set"}},
	{Name: "dns-provider", Plural: "dns-providers", Schema: "DNSProvider", Key: []string{"name"}, Applied: true,
		Columns: []string{"type", "settings", "secrets_set"}},
	{Name: "autoscale-config", Plural: "autoscale-configs", Schema: "AutoscaleConfig", Key: []string{"name"}, Applied: true,
		Columns: []string{"pool", "zone", "enabled", "standby_cores", "min_agents", "max_agents", "vm_provider", "last_decision"}},
	{Name: "web-filter-policy", Plural: "web-filter-policies", Schema: "WebFilterPolicy", Key: []string{"name"}, Applied: true,
		Columns: []string{"default_allow", "allowed_domains", "denied_domains"}},
	{Name: "group", Plural: "groups", Schema: "Group", Key: []string{"name"}, Applied: true,
		Columns: []string{"priority", "web_filter_policy", "session_time_limit", "keepalive_expiration"}},
	{Name: "user", Plural: "users", Schema: "User", Key: []string{"username"}, Applied: true,
		Columns: []string{"groups", "has_password"}},
	{Name: "agent", Plural: "agents", Schema: "Agent", Key: []string{"name"}, Applied: true,
		Columns: []string{"zone", "pool", "docker_endpoint", "enabled", "sessions", "cores", "free_cores", "memory_mb", "free_memory_mb", "lifecycle", "autoscale_config"},
		Managed: func(obj map[string]any) bool { return obj["autoscale_config"] != nil || obj["lifecycle"] == "deleted" }},
	{Name: "server", Plural: "servers", Schema: "Server", Key: []string{"name"}, Applied: true,
		Columns: []string{"zone", "pool", "address", "enabled", "sessions", "max_sessions", "assigned_user"}},
	{Name: "workspace", Plural: "workspaces", Schema: "Workspace", Key: []string{"name"}, Applied: true,
		Columns: []string{"image", "cores", "memory_mb", "enabled", "server_pool", "web_filter_policy", "revision"}},
	{Name: "staging-config", Plural: "staging-configs", Schema: "StagingConfig", Key: []string{"zone", "workspace"}, Applied: true,
		Columns: []string{"desired_sessions", "current_sessions", "status", "expiration_hours", "last_error"}},
	{Name: "api-key", Plural: "api-keys", Schema: "APIKey", Key: []string{"name"},
		Columns: []string{"scopes", "prefix", "expires_at", "last_used_at"}},
}

// kindNames lists the kinds' names for messages.
func kindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

// kindNamed returns the kind called s: its name or plural, with or without
// dashes ("web-filter-policies", "webfilterpolicy"), in any case.
func kindNamed(s string) (*kind, bool) {
	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "") }
	for _, k := range kinds {
		if f := fold(s); f == fold(k.Name) || f == fold(k.Plural) {
			return k, true
		}
	}
	return nil, false
}

// path is the API's collection of the kind.
func (k *kind) path() string { return "/api/v1/" + k.Plural }

// itemPath is the API path of the resource with the path key id (a name,
// a username or a staging config's id).
func (k *kind) itemPath(id string) string { return k.path() + "/" + url.PathEscape(id) }

// keyOf returns the identity of a resource of the kind, as messages show
// it (`zone-a`, `zone-a/demo`), from its fields; "" when a key field is
// missing or not a non-empty string.
func (k *kind) keyOf(fields map[string]any) string {
	parts := make([]string, len(k.Key))
	for i, f := range k.Key {
		s, ok := fields[f].(string)
		if !ok || s == "" {
			return ""
		}
		parts[i] = s
	}
	return strings.Join(parts, "/")
}

// fieldSets are what openapi.yaml says of a kind's fields.
type fieldSets struct {
	// Create lists the fields of the create body in the schema's order:
	// everything a document may give, and what `get -o yaml` writes.
	Create []string
	// Update holds the fields a PATCH may change.
	Update map[string]bool
	// Read holds the fields the API answers; a create field that is not
	// one is write-only (a user's password).
	Read map[string]bool
}

// writeOnly reports whether field is given on create but never answered.
func (f fieldSets) writeOnly(field string) bool {
	return slices.Contains(f.Create, field) && !f.Read[field]
}

var (
	apiFieldsOnce sync.Once
	apiFields     map[string]fieldSets
	apiFieldsErr  error
)

// fieldsOf returns the field sets of k, read from the API description the
// CLI is built with (schemas/api/openapi.yaml), so that a field the API
// gains is applied and shown without a change here.
func fieldsOf(k *kind) (fieldSets, error) {
	apiFieldsOnce.Do(func() { apiFields, apiFieldsErr = readAPIFields(schemas.OpenAPI) })
	if apiFieldsErr != nil {
		return fieldSets{}, apiFieldsErr
	}
	f, ok := apiFields[k.Schema]
	if !ok || len(f.Create) == 0 {
		return fieldSets{}, fmt.Errorf("openapi.yaml has no schemas %s and %sCreate (kind %s)", k.Schema, k.Schema, k.Name)
	}
	return f, nil
}

// readAPIFields reads, from an OpenAPI document, the property names of
// each schema X that has an XCreate schema, and of XCreate and XUpdate.
func readAPIFields(doc []byte) (map[string]fieldSets, error) {
	var api struct {
		Components struct {
			Schemas map[string]struct {
				Properties yaml.Node `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(doc, &api); err != nil {
		return nil, fmt.Errorf("reading openapi.yaml: %w", err)
	}
	names := func(schema string) []string {
		props := api.Components.Schemas[schema].Properties
		var out []string
		for i := 0; i+1 < len(props.Content); i += 2 {
			out = append(out, props.Content[i].Value)
		}
		return out
	}
	set := func(list []string) map[string]bool {
		m := make(map[string]bool, len(list))
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	out := map[string]fieldSets{}
	for name := range api.Components.Schemas {
		base, ok := strings.CutSuffix(name, "Create")
		if !ok {
			continue
		}
		out[base] = fieldSets{Create: names(name), Update: set(names(base + "Update")), Read: set(names(base))}
	}
	return out, nil
}
