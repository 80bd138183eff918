package domain

import (
	"bytes"
	"encoding/json"
	"strings"
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

// userTokens are the volume-mapping tokens that make a mapping per user.
var userTokens = []string{"{username}", "{user_id}"}

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

// usesUserToken reports whether any key or string value of the volume
// mappings contains {username} or {user_id}. Only such mappings are
// incompatible; a fixed mapping can be applied when the container starts.
func usesUserToken(raw json.RawMessage) bool {
	if emptyJSON(raw) {
		return false
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		// Unreadable mappings cannot be proven user-independent.
		return true
	}
	var walk func(any) bool
	hasToken := func(s string) bool {
		for _, t := range userTokens {
			if strings.Contains(s, t) {
				return true
			}
		}
		return false
	}
	walk = func(v any) bool {
		switch t := v.(type) {
		case string:
			return hasToken(t)
		case map[string]any:
			for k, e := range t {
				if hasToken(k) || walk(e) {
					return true
				}
			}
		case []any:
			for _, e := range t {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
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
