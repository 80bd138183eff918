package domain

import (
	"encoding/json"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// GroupPriorityDefault is a group's priority unless told; 1 is the highest.
const GroupPriorityDefault int32 = 100

// PermissionsDefault are the permissions a group written without allow_*
// fields grants: every one. A staging config written without them starts
// its sessions with the same, so the smallest staging config serves the
// users of the smallest group.
func PermissionsDefault() events.Permissions {
	return events.Permissions{
		AllowAudio:         true,
		AllowClipboardDown: true,
		AllowClipboardUp:   true,
		AllowDownloads:     true,
		AllowMicrophone:    true,
		AllowUploads:       true,
		AllowGamepad:       true,
	}
}

// Group is a set of users and the session settings it grants them. A user's
// effective setting comes from their group with the lowest priority number.
// WebFilterPolicy is a policy's name (WebFilterPolicyID its id); the
// session limits are nil when there is none.
type Group struct {
	ID       string `db:"id" json:"id"`
	Name     string `db:"name" json:"name"`
	Priority int32  `db:"priority" json:"priority"`
	events.Permissions
	ExposeUserEnvironmentVars bool       `db:"expose_user_environment_vars" json:"expose_user_environment_vars"`
	InjectSSHKeys             bool       `db:"inject_ssh_keys" json:"inject_ssh_keys"`
	RunConfig                 JSONObject `db:"run_config" json:"run_config"`
	VolumeMapping             JSONObject `db:"volume_mapping" json:"volume_mapping"`
	WebFilterPolicyID         *string    `db:"web_filter_policy_id" json:"-"`
	WebFilterPolicy           *string    `db:"web_filter_policy" json:"web_filter_policy"`
	SessionTimeLimit          *Duration  `db:"session_time_limit" json:"session_time_limit"`
	KeepaliveExpiration       *Duration  `db:"keepalive_expiration" json:"keepalive_expiration"`
	CreatedAt                 time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt                 time.Time  `db:"updated_at" json:"updated_at"`
}

// GroupUpdate is the body of PATCH /api/v1/groups/{name}; object fields are
// replaced as a whole, and null clears the web filter policy and the
// session limits.
type GroupUpdate struct {
	Name     Optional[string] `json:"name"`
	Priority Optional[int32]  `json:"priority"`
	permissionFields
	ExposeUserEnvironmentVars Optional[bool]                       `json:"expose_user_environment_vars"`
	InjectSSHKeys             Optional[bool]                       `json:"inject_ssh_keys"`
	RunConfig                 Optional[map[string]json.RawMessage] `json:"run_config"`
	VolumeMapping             Optional[map[string]json.RawMessage] `json:"volume_mapping"`
	WebFilterPolicy           Optional[string]                     `json:"web_filter_policy"`
	SessionTimeLimit          Optional[string]                     `json:"session_time_limit"`
	KeepaliveExpiration       Optional[string]                     `json:"keepalive_expiration"`
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
	in.permissionFields.validate(&errs)
	checkPresent(&errs, "expose_user_environment_vars", in.ExposeUserEnvironmentVars, optional)
	checkPresent(&errs, "inject_ssh_keys", in.InjectSSHKeys, optional)
	if present(&errs, "run_config", in.RunConfig, optional) {
		_, problems := containerconfig.ParseRunConfig(objectOf(in.RunConfig.Value))
		addSettingErrors(&errs, "run_config", problems)
	}
	if present(&errs, "volume_mapping", in.VolumeMapping, optional) {
		_, problems := containerconfig.ParseVolumeMappings(objectOf(in.VolumeMapping.Value))
		addSettingErrors(&errs, "volume_mapping", problems)
	}
	checkNonEmpty(&errs, "web_filter_policy", in.WebFilterPolicy, nullable)
	checkDuration(&errs, "session_time_limit", in.SessionTimeLimit, nullable)
	checkDuration(&errs, "keepalive_expiration", in.KeepaliveExpiration, nullable)
	return errs
}

// Group returns the group the body describes; the web filter policy is
// still a name only. Groups grant every permission (PermissionsDefault),
// no incompatible setting and no session limit unless told otherwise.
func (in GroupCreate) Group() Group {
	g := Group{
		Priority:      GroupPriorityDefault,
		Permissions:   PermissionsDefault(),
		RunConfig:     objectOf(nil),
		VolumeMapping: objectOf(nil),
	}
	GroupUpdate(in).Apply(&g)
	return g
}

// Apply changes g as the body says; a changed web filter policy is a name
// only.
func (in GroupUpdate) Apply(g *Group) {
	setIfPresent(&g.Name, in.Name)
	setIfPresent(&g.Priority, in.Priority)
	in.permissionFields.apply(&g.Permissions)
	setIfPresent(&g.ExposeUserEnvironmentVars, in.ExposeUserEnvironmentVars)
	setIfPresent(&g.InjectSSHKeys, in.InjectSSHKeys)
	if in.RunConfig.Has() {
		g.RunConfig = objectOf(in.RunConfig.Value)
	}
	if in.VolumeMapping.Has() {
		g.VolumeMapping = objectOf(in.VolumeMapping.Value)
	}
	if in.WebFilterPolicy.Set {
		g.WebFilterPolicy = in.WebFilterPolicy.Ptr()
	}
	if in.SessionTimeLimit.Set {
		g.SessionTimeLimit = durationOf(in.SessionTimeLimit)
	}
	if in.KeepaliveExpiration.Set {
		g.KeepaliveExpiration = durationOf(in.KeepaliveExpiration)
	}
}
