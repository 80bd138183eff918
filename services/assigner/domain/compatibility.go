package domain

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
)

// Setting names an incompatible setting, as recorded in violations.
type Setting string

// The settings that require a workspace to be created with them applied,
// so a user who has one cannot get a staged session (rule 4).
const (
	SettingPersistentProfile         Setting = "persistent_profile"
	SettingVolumeMappings            Setting = "volume_mappings"
	SettingExposeUserEnvironmentVars Setting = "expose_user_environment_vars"
	SettingInjectSSHKeys             Setting = "inject_ssh_keys"
	SettingRunConfig                 Setting = "run_config"
	SettingVolumeMapping             Setting = "volume_mapping"
	SettingWebFilterPolicy           Setting = "web_filter_policy"
)

// IncompatibleSettings lists, in a fixed order, every setting of the
// workspace and the user's effective group that rules out a staged session.
func IncompatibleSettings(ws Workspace, g EffectiveGroup) []Setting {
	var out []Setting
	if strings.TrimSpace(ws.PersistentProfilePath) != "" {
		out = append(out, SettingPersistentProfile)
	}
	if usesUserToken(ws.VolumeMappings) {
		out = append(out, SettingVolumeMappings)
	}
	if g.ExposeUserEnvironmentVars {
		out = append(out, SettingExposeUserEnvironmentVars)
	}
	if g.InjectSSHKeys {
		out = append(out, SettingInjectSSHKeys)
	}
	if !emptyJSON(g.RunConfig) {
		out = append(out, SettingRunConfig)
	}
	if !emptyJSON(g.VolumeMapping) {
		out = append(out, SettingVolumeMapping)
	}
	if strings.TrimSpace(g.WebFilterPolicy) != "" {
		out = append(out, SettingWebFilterPolicy)
	}
	return out
}

// usesUserToken reports whether any volume mapping uses {username} or
// {user_id} (libs/containerconfig). Only such mappings are incompatible; a
// fixed mapping can be applied when the container starts.
func usesUserToken(raw json.RawMessage) bool {
	if emptyJSON(raw) {
		return false
	}
	mappings, errs := containerconfig.ParseVolumeMappings(raw)
	if len(errs) > 0 {
		// Unreadable mappings cannot be proven user-independent.
		return true
	}
	return slices.ContainsFunc(mappings, containerconfig.VolumeMapping.UsesUserToken)
}

// emptyJSON treats absent, null, {} and [] as "not set".
func emptyJSON(raw []byte) bool {
	s := bytes.TrimSpace(raw)
	switch string(s) {
	case "", "null", "{}", "[]", `""`:
		return true
	}
	return false
}
