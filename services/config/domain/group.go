package domain

import (
	"encoding/json"
	"time"
)

// GroupPriorityDefault is a group's priority unless told; 1 is the highest.
const GroupPriorityDefault int32 = 100

// Group is a set of users and the session settings it grants them. A user's
// effective setting comes from their group with the lowest priority number.
type Group struct {
	ID                        string     `db:"id" json:"id"`
	Name                      string     `db:"name" json:"name"`
	Priority                  int32      `db:"priority" json:"priority"`
	AllowAudio                bool       `db:"allow_audio" json:"allow_audio"`
	AllowClipboardDown        bool       `db:"allow_clipboard_down" json:"allow_clipboard_down"`
	AllowClipboardUp          bool       `db:"allow_clipboard_up" json:"allow_clipboard_up"`
	AllowDownloads            bool       `db:"allow_downloads" json:"allow_downloads"`
	AllowMicrophone           bool       `db:"allow_microphone" json:"allow_microphone"`
	AllowUploads              bool       `db:"allow_uploads" json:"allow_uploads"`
	AllowGamepad              bool       `db:"allow_gamepad" json:"allow_gamepad"`
	ExposeUserEnvironmentVars bool       `db:"expose_user_environment_vars" json:"expose_user_environment_vars"`
	InjectSSHKeys             bool       `db:"inject_ssh_keys" json:"inject_ssh_keys"`
	RunConfig                 JSONObject `db:"run_config" json:"run_config"`
	VolumeMapping             JSONObject `db:"volume_mapping" json:"volume_mapping"`
	WebFilterPolicy           string     `db:"web_filter_policy" json:"web_filter_policy"`
	CreatedAt                 time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt                 time.Time  `db:"updated_at" json:"updated_at"`
}

// GroupUpdate is the body of PATCH /api/v1/groups/{name}; object fields are
// replaced as a whole.
type GroupUpdate struct {
	Name                      Optional[string]                     `json:"name"`
	Priority                  Optional[int32]                      `json:"priority"`
	AllowAudio                Optional[bool]                       `json:"allow_audio"`
	AllowClipboardDown        Optional[bool]                       `json:"allow_clipboard_down"`
	AllowClipboardUp          Optional[bool]                       `json:"allow_clipboard_up"`
	AllowDownloads            Optional[bool]                       `json:"allow_downloads"`
	AllowMicrophone           Optional[bool]                       `json:"allow_microphone"`
	AllowUploads              Optional[bool]                       `json:"allow_uploads"`
	AllowGamepad              Optional[bool]                       `json:"allow_gamepad"`
	ExposeUserEnvironmentVars Optional[bool]                       `json:"expose_user_environment_vars"`
	InjectSSHKeys             Optional[bool]                       `json:"inject_ssh_keys"`
	RunConfig                 Optional[map[string]json.RawMessage] `json:"run_config"`
	VolumeMapping             Optional[map[string]json.RawMessage] `json:"volume_mapping"`
	WebFilterPolicy           Optional[string]                     `json:"web_filter_policy"`
}

// GroupCreate is the body of POST /api/v1/groups: the same fields, name
// required.
type GroupCreate GroupUpdate

// Validate lists the body's problems.
func (in GroupCreate) Validate() FieldErrors { return validateGroup(GroupUpdate(in), required) }

// Validate lists the body's problems.
func (in GroupUpdate) Validate() FieldErrors { return validateGroup(in, optional) }

func validateGroup(in GroupUpdate, name presence) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, name)
	checkMin(&errs, "priority", in.Priority, optional, 1)
	for _, f := range []struct {
		field string
		value Optional[bool]
	}{
		{"allow_audio", in.AllowAudio},
		{"allow_clipboard_down", in.AllowClipboardDown},
		{"allow_clipboard_up", in.AllowClipboardUp},
		{"allow_downloads", in.AllowDownloads},
		{"allow_microphone", in.AllowMicrophone},
		{"allow_uploads", in.AllowUploads},
		{"allow_gamepad", in.AllowGamepad},
		{"expose_user_environment_vars", in.ExposeUserEnvironmentVars},
		{"inject_ssh_keys", in.InjectSSHKeys},
	} {
		checkPresent(&errs, f.field, f.value, optional)
	}
	checkPresent(&errs, "run_config", in.RunConfig, optional)
	checkPresent(&errs, "volume_mapping", in.VolumeMapping, optional)
	checkPresent(&errs, "web_filter_policy", in.WebFilterPolicy, optional)
	return errs
}

// Group returns the group the body describes. Groups grant every permission
// and no incompatible setting unless told otherwise.
func (in GroupCreate) Group() Group {
	g := Group{
		Priority:           GroupPriorityDefault,
		AllowAudio:         true,
		AllowClipboardDown: true,
		AllowClipboardUp:   true,
		AllowDownloads:     true,
		AllowMicrophone:    true,
		AllowUploads:       true,
		AllowGamepad:       true,
		RunConfig:          objectOf(nil),
		VolumeMapping:      objectOf(nil),
	}
	GroupUpdate(in).Apply(&g)
	return g
}

// Apply changes g as the body says.
func (in GroupUpdate) Apply(g *Group) {
	setIfPresent(&g.Name, in.Name)
	setIfPresent(&g.Priority, in.Priority)
	setIfPresent(&g.AllowAudio, in.AllowAudio)
	setIfPresent(&g.AllowClipboardDown, in.AllowClipboardDown)
	setIfPresent(&g.AllowClipboardUp, in.AllowClipboardUp)
	setIfPresent(&g.AllowDownloads, in.AllowDownloads)
	setIfPresent(&g.AllowMicrophone, in.AllowMicrophone)
	setIfPresent(&g.AllowUploads, in.AllowUploads)
	setIfPresent(&g.AllowGamepad, in.AllowGamepad)
	setIfPresent(&g.ExposeUserEnvironmentVars, in.ExposeUserEnvironmentVars)
	setIfPresent(&g.InjectSSHKeys, in.InjectSSHKeys)
	if in.RunConfig.Has() {
		g.RunConfig = objectOf(in.RunConfig.Value)
	}
	if in.VolumeMapping.Has() {
		g.VolumeMapping = objectOf(in.VolumeMapping.Value)
	}
	setIfPresent(&g.WebFilterPolicy, in.WebFilterPolicy)
}
