package domain

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
)

// Workspace defaults (openapi.yaml WorkspaceCreate).
const (
	WorkspaceCoresDefault    = 1.0
	WorkspaceMemoryMBDefault = int32(512)
	WorkspacePortDefault     = 8080
)

// Workspace is what a session runs: an image, its resources, where it may
// run, and how the provisioner reaches and prepares it. A workspace with a
// server pool starts no container, so it needs no image. Revision is the
// database's: it goes up with every field that shapes its containers, so
// staged containers of an older revision are replaced.
type Workspace struct {
	ID                    string      `db:"id" json:"id"`
	Name                  string      `db:"name" json:"name"`
	Image                 string      `db:"image" json:"image"`
	Cores                 float64     `db:"cores" json:"cores"`
	MemoryMB              int32       `db:"memory_mb" json:"memory_mb"`
	Enabled               bool        `db:"enabled" json:"enabled"`
	IncludeLabels         Labels      `db:"include_labels" json:"include_labels"`
	ExcludeLabels         Labels      `db:"exclude_labels" json:"exclude_labels"`
	HomeDirectory         string      `db:"home_directory" json:"home_directory"`
	PersistentProfilePath string      `db:"persistent_profile_path" json:"persistent_profile_path"`
	VolumeMappings        JSONObject  `db:"volume_mappings" json:"volume_mappings"`
	DockerExecConfig      JSONObject  `db:"docker_exec_config" json:"docker_exec_config"`
	RunConfig             JSONObject  `db:"run_config" json:"run_config"`
	AssignHook            *JSONObject `db:"assign_hook" json:"assign_hook"`
	Port                  int         `db:"port" json:"port"`
	ReadinessPath         string      `db:"readiness_path" json:"readiness_path"`
	WebFilterPolicyID     *string     `db:"web_filter_policy_id" json:"-"`
	WebFilterPolicy       *string     `db:"web_filter_policy" json:"web_filter_policy"`
	ServerPoolID          *string     `db:"server_pool_id" json:"-"`
	ServerPool            *string     `db:"server_pool" json:"server_pool"`
	Revision              int64       `db:"revision" json:"revision"`
	CreatedAt             time.Time   `db:"created_at" json:"created_at"`
	UpdatedAt             time.Time   `db:"updated_at" json:"updated_at"`
}

// Validate lists the problems only the whole workspace shows, once a body
// has been applied to it: a workspace that starts containers (no server
// pool) needs an image, also when a PATCH clears its server pool.
func (w Workspace) Validate() FieldErrors {
	var errs FieldErrors
	if w.ServerPool == nil && w.Image == "" {
		errs.Add("image", "is required for a workspace without a server_pool (its sessions run in containers of this image)")
	}
	return errs
}

// WorkspaceUpdate is the body of PATCH /api/v1/workspaces/{name}; object
// fields are replaced as a whole, and null clears the server pool, the
// web filter policy and the assign hook.
type WorkspaceUpdate struct {
	Name                  Optional[string]                     `json:"name"`
	Image                 Optional[string]                     `json:"image"`
	Cores                 Optional[float64]                    `json:"cores"`
	MemoryMB              Optional[int32]                      `json:"memory_mb"`
	Enabled               Optional[bool]                       `json:"enabled"`
	IncludeLabels         Optional[[]string]                   `json:"include_labels"`
	ExcludeLabels         Optional[[]string]                   `json:"exclude_labels"`
	HomeDirectory         Optional[string]                     `json:"home_directory"`
	PersistentProfilePath Optional[string]                     `json:"persistent_profile_path"`
	VolumeMappings        Optional[map[string]json.RawMessage] `json:"volume_mappings"`
	DockerExecConfig      Optional[map[string]json.RawMessage] `json:"docker_exec_config"`
	RunConfig             Optional[map[string]json.RawMessage] `json:"run_config"`
	AssignHook            Optional[map[string]json.RawMessage] `json:"assign_hook"`
	Port                  Optional[int]                        `json:"port"`
	ReadinessPath         Optional[string]                     `json:"readiness_path"`
	WebFilterPolicy       Optional[string]                     `json:"web_filter_policy"`
	ServerPool            Optional[string]                     `json:"server_pool"`
}

// WorkspaceCreate is the body of POST /api/v1/workspaces: the same fields,
// name required, and image too unless there is a server pool.
type WorkspaceCreate WorkspaceUpdate

// Validate lists the body's problems.
func (in WorkspaceCreate) Validate() FieldErrors {
	image := required
	if in.ServerPool.Has() {
		image = optional
	}
	return validateWorkspace(WorkspaceUpdate(in), required, image)
}

// Validate lists the body's problems; whether the image may be empty
// depends on the server pool the workspace ends up with (Workspace.Validate).
func (in WorkspaceUpdate) Validate() FieldErrors {
	return validateWorkspace(in, optional, optional)
}

// Workspace returns the workspace the body describes, with defaults filled
// in; the server pool and the web filter policy are still names only.
func (in WorkspaceCreate) Workspace() Workspace {
	w := Workspace{
		Cores:            WorkspaceCoresDefault,
		MemoryMB:         WorkspaceMemoryMBDefault,
		Enabled:          true,
		HomeDirectory:    containerconfig.HomeDirectoryDefault,
		VolumeMappings:   objectOf(nil),
		DockerExecConfig: objectOf(nil),
		RunConfig:        objectOf(nil),
		Port:             WorkspacePortDefault,
	}
	WorkspaceUpdate(in).Apply(&w)
	return w
}

func validateWorkspace(in WorkspaceUpdate, name, image presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, name)
	if image == required {
		checkNonEmpty(&errs, "image", in.Image, image)
	} else {
		checkPresent(&errs, "image", in.Image, image)
	}
	checkCores(&errs, "cores", in.Cores, optional)
	checkMin(&errs, "memory_mb", in.MemoryMB, optional, 1)
	checkPresent(&errs, "enabled", in.Enabled, optional)
	checkPresent(&errs, "include_labels", in.IncludeLabels, optional)
	checkPresent(&errs, "exclude_labels", in.ExcludeLabels, optional)
	checkPath(&errs, "home_directory", in.HomeDirectory, optional, false)
	if present(&errs, "persistent_profile_path", in.PersistentProfilePath, optional) && in.PersistentProfilePath.Value != "" {
		if problem := containerconfig.CheckProfilePath(in.PersistentProfilePath.Value); problem != "" {
			errs.Add("persistent_profile_path", "%s (tokens {username}, {user_id} and {workspace} are substituted first)", problem)
		}
	}
	if present(&errs, "volume_mappings", in.VolumeMappings, optional) {
		_, problems := containerconfig.ParseVolumeMappings(objectOf(in.VolumeMappings.Value))
		addSettingErrors(&errs, "volume_mappings", problems)
	}
	if present(&errs, "docker_exec_config", in.DockerExecConfig, optional) {
		checkDockerExecConfig(&errs, "docker_exec_config", in.DockerExecConfig.Value)
	}
	if present(&errs, "run_config", in.RunConfig, optional) {
		_, problems := containerconfig.ParseRunConfig(objectOf(in.RunConfig.Value))
		addSettingErrors(&errs, "run_config", problems)
	}
	if present(&errs, "assign_hook", in.AssignHook, nullable) {
		_, _, problems := containerconfig.ParseAssignHook(objectOf(in.AssignHook.Value))
		addSettingErrors(&errs, "assign_hook", problems)
	}
	checkRange(&errs, "port", in.Port, optional, 1, 65535)
	if present(&errs, "readiness_path", in.ReadinessPath, optional) {
		if problem := containerconfig.CheckReadinessPath(in.ReadinessPath.Value); problem != "" {
			errs.Add("readiness_path", "%s", problem)
		}
	}
	checkNonEmpty(&errs, "web_filter_policy", in.WebFilterPolicy, nullable)
	checkNonEmpty(&errs, "server_pool", in.ServerPool, nullable)
	return errs
}

// Apply changes w as the body says; a changed server pool or web filter
// policy is a name only.
func (in WorkspaceUpdate) Apply(w *Workspace) {
	setIfPresent(&w.Name, in.Name)
	setIfPresent(&w.Image, in.Image)
	setIfPresent(&w.Cores, in.Cores)
	setIfPresent(&w.MemoryMB, in.MemoryMB)
	setIfPresent(&w.Enabled, in.Enabled)
	if in.IncludeLabels.Has() {
		w.IncludeLabels = Labels(in.IncludeLabels.Value)
	}
	if in.ExcludeLabels.Has() {
		w.ExcludeLabels = Labels(in.ExcludeLabels.Value)
	}
	setIfPresent(&w.HomeDirectory, in.HomeDirectory)
	setIfPresent(&w.PersistentProfilePath, in.PersistentProfilePath)
	if in.VolumeMappings.Has() {
		w.VolumeMappings = objectOf(in.VolumeMappings.Value)
	}
	if in.DockerExecConfig.Has() {
		w.DockerExecConfig = objectOf(in.DockerExecConfig.Value)
	}
	if in.RunConfig.Has() {
		w.RunConfig = objectOf(in.RunConfig.Value)
	}
	if in.AssignHook.Set {
		w.AssignHook = assignHookOf(in.AssignHook)
	}
	setIfPresent(&w.Port, in.Port)
	setIfPresent(&w.ReadinessPath, in.ReadinessPath)
	if in.WebFilterPolicy.Set {
		w.WebFilterPolicy = in.WebFilterPolicy.Ptr()
	}
	if in.ServerPool.Set {
		w.ServerPool = in.ServerPool.Ptr()
	}
}

// checkDockerExecConfig checks a docker_exec_config with
// libs/containerconfig, which the provisioner runs it with: "assign" and
// "first_launch", each a cmd (a shell line, split as a shell would, or an
// argv), user, privileged, environment and workdir; any other key is
// refused. A command given as null is refused here, where writers are
// strict.
func checkDockerExecConfig(errs *FieldErrors, field string, m map[string]json.RawMessage) {
	for _, key := range slices.Sorted(maps.Keys(m)) {
		if string(m[key]) == "null" {
			errs.Add(field+"."+key, "must be an object")
		}
	}
	_, problems := containerconfig.ParseExecConfig(objectOf(m))
	addSettingErrors(errs, field, problems)
}

// assignHookOf is the assign_hook to store for a body's: the object as
// written (its timeout too, so an absent one is the default, 5s, when the
// provisioner reads it), or nil (NULL) for null, which is none.
func assignHookOf(o Optional[map[string]json.RawMessage]) *JSONObject {
	if !o.Has() {
		return nil
	}
	hook := objectOf(o.Value)
	return &hook
}
