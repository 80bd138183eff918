package domain

import (
	"encoding/json"
	"slices"
	"time"
)

// Workspace defaults (openapi.yaml WorkspaceCreate).
const (
	WorkspaceCoresDefault    = 1.0
	WorkspaceMemoryMBDefault = int32(512)
	WorkspacePortDefault     = 8080
)

// Workspace is what a session runs: an image, its resources, where it may
// run, and how the provisioner reaches and prepares it.
type Workspace struct {
	ID                    string     `db:"id" json:"id"`
	Name                  string     `db:"name" json:"name"`
	Image                 string     `db:"image" json:"image"`
	Cores                 float64    `db:"cores" json:"cores"`
	MemoryMB              int32      `db:"memory_mb" json:"memory_mb"`
	Enabled               bool       `db:"enabled" json:"enabled"`
	IncludeLabels         Labels     `db:"include_labels" json:"include_labels"`
	ExcludeLabels         Labels     `db:"exclude_labels" json:"exclude_labels"`
	PersistentProfilePath string     `db:"persistent_profile_path" json:"persistent_profile_path"`
	VolumeMappings        JSONObject `db:"volume_mappings" json:"volume_mappings"`
	DockerExecConfig      JSONObject `db:"docker_exec_config" json:"docker_exec_config"`
	RunConfig             JSONObject `db:"run_config" json:"run_config"`
	Port                  int        `db:"port" json:"port"`
	ReadinessPath         string     `db:"readiness_path" json:"readiness_path"`
	ServerPoolID          *string    `db:"server_pool_id" json:"-"`
	ServerPool            *string    `db:"server_pool" json:"server_pool"`
	CreatedAt             time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt             time.Time  `db:"updated_at" json:"updated_at"`
}

// WorkspaceUpdate is the body of PATCH /api/v1/workspaces/{name}; object
// fields are replaced as a whole.
type WorkspaceUpdate struct {
	Name                  Optional[string]                     `json:"name"`
	Image                 Optional[string]                     `json:"image"`
	Cores                 Optional[float64]                    `json:"cores"`
	MemoryMB              Optional[int32]                      `json:"memory_mb"`
	Enabled               Optional[bool]                       `json:"enabled"`
	IncludeLabels         Optional[[]string]                   `json:"include_labels"`
	ExcludeLabels         Optional[[]string]                   `json:"exclude_labels"`
	PersistentProfilePath Optional[string]                     `json:"persistent_profile_path"`
	VolumeMappings        Optional[map[string]json.RawMessage] `json:"volume_mappings"`
	DockerExecConfig      Optional[map[string]json.RawMessage] `json:"docker_exec_config"`
	RunConfig             Optional[map[string]json.RawMessage] `json:"run_config"`
	Port                  Optional[int]                        `json:"port"`
	ReadinessPath         Optional[string]                     `json:"readiness_path"`
	ServerPool            Optional[string]                     `json:"server_pool"`
}

// WorkspaceCreate is the body of POST /api/v1/workspaces: the same fields,
// name and image required.
type WorkspaceCreate WorkspaceUpdate

// Validate lists the body's problems.
func (in WorkspaceCreate) Validate() FieldErrors {
	return validateWorkspace(WorkspaceUpdate(in), required)
}

// Validate lists the body's problems.
func (in WorkspaceUpdate) Validate() FieldErrors {
	return validateWorkspace(in, optional)
}

// Workspace returns the workspace the body describes, with defaults filled
// in; the server pool is still a name only.
func (in WorkspaceCreate) Workspace() Workspace {
	w := Workspace{
		Cores:            WorkspaceCoresDefault,
		MemoryMB:         WorkspaceMemoryMBDefault,
		Enabled:          true,
		VolumeMappings:   objectOf(nil),
		DockerExecConfig: objectOf(nil),
		RunConfig:        objectOf(nil),
		Port:             WorkspacePortDefault,
	}
	WorkspaceUpdate(in).Apply(&w)
	return w
}

func validateWorkspace(in WorkspaceUpdate, p presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, p)
	checkNonEmpty(&errs, "image", in.Image, p)
	checkCores(&errs, "cores", in.Cores, optional)
	checkMin(&errs, "memory_mb", in.MemoryMB, optional, 1)
	checkPresent(&errs, "enabled", in.Enabled, optional)
	checkPresent(&errs, "include_labels", in.IncludeLabels, optional)
	checkPresent(&errs, "exclude_labels", in.ExcludeLabels, optional)
	checkPresent(&errs, "persistent_profile_path", in.PersistentProfilePath, optional)
	if present(&errs, "volume_mappings", in.VolumeMappings, optional) {
		checkVolumeMappings(&errs, "volume_mappings", in.VolumeMappings.Value)
	}
	if present(&errs, "docker_exec_config", in.DockerExecConfig, optional) {
		checkDockerExecConfig(&errs, "docker_exec_config", in.DockerExecConfig.Value)
	}
	checkPresent(&errs, "run_config", in.RunConfig, optional)
	checkRange(&errs, "port", in.Port, optional, 1, 65535)
	checkPresent(&errs, "readiness_path", in.ReadinessPath, optional)
	checkNonEmpty(&errs, "server_pool", in.ServerPool, nullable)
	return errs
}

// Apply changes w as the body says; a changed server pool is a name only.
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
	setIfPresent(&w.Port, in.Port)
	setIfPresent(&w.ReadinessPath, in.ReadinessPath)
	if in.ServerPool.Set {
		w.ServerPool = in.ServerPool.Ptr()
	}
}

// volumeMapping is one entry of a workspace's volume_mappings: host path →
// where and how it is mounted. Other keys are kept.
type volumeMapping struct {
	Bind Optional[string] `json:"bind"`
	Mode Optional[string] `json:"mode"`
}

func checkVolumeMappings(errs *FieldErrors, field string, m map[string]json.RawMessage) {
	for _, host := range sortedKeys(m) {
		path := field + "." + host
		if string(m[host]) == "null" {
			errs.Add(path, "must be an object")
			continue
		}
		var vm volumeMapping
		// Other keys are allowed here, so decode leniently.
		if err := json.Unmarshal(m[host], &vm); err != nil {
			*errs = append(*errs, decodeError(err, path))
			continue
		}
		checkNonEmpty(errs, path+".bind", vm.Bind, required)
		checkEnum(errs, path+".mode", vm.Mode, optional, "rw", "ro")
	}
}

// DockerExecCommand is a command run inside a session's container; the
// "assign" one runs when a staged session is assigned to a user.
type DockerExecCommand struct {
	Cmd         Optional[json.RawMessage]   `json:"cmd"`
	User        Optional[string]            `json:"user"`
	Privileged  Optional[bool]              `json:"privileged"`
	Environment Optional[map[string]string] `json:"environment"`
	Workdir     Optional[string]            `json:"workdir"`
}

func checkDockerExecConfig(errs *FieldErrors, field string, m map[string]json.RawMessage) {
	raw, ok := m["assign"]
	if !ok {
		return
	}
	path := field + ".assign"
	if string(raw) == "null" {
		errs.Add(path, "must be an object")
		return
	}
	var cmd DockerExecCommand
	if decodeErrs := Decode(raw, &cmd, path); len(decodeErrs) > 0 {
		*errs = append(*errs, decodeErrs...)
		return
	}
	if present(errs, path+".cmd", cmd.Cmd, required) {
		checkCommandLine(errs, path+".cmd", cmd.Cmd.Value)
	}
	checkPresent(errs, path+".user", cmd.User, optional)
	checkPresent(errs, path+".privileged", cmd.Privileged, optional)
	checkPresent(errs, path+".environment", cmd.Environment, optional)
	checkPresent(errs, path+".workdir", cmd.Workdir, optional)
}

// checkCommandLine accepts a shell command line or a non-empty argv.
func checkCommandLine(errs *FieldErrors, field string, raw json.RawMessage) {
	var line string
	if json.Unmarshal(raw, &line) == nil {
		if line == "" {
			errs.Add(field, "must not be empty")
		}
		return
	}
	var argv []string
	if json.Unmarshal(raw, &argv) != nil {
		errs.Add(field, "must be a string or an array of strings")
		return
	}
	if len(argv) == 0 {
		errs.Add(field, "must not be empty")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
