package domain

import (
	"cmp"
	"slices"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// EffectiveGroup is the settings that apply to a user: each is taken from
// the user's group with the best (lowest) priority number. Groups of equal
// priority are ordered by name so the outcome never depends on query order.
type EffectiveGroup struct {
	Permissions               events.Permissions
	ExposeUserEnvironmentVars bool
	InjectSSHKeys             bool
	RunConfig                 []byte
	VolumeMapping             []byte
	WebFilterPolicy           string
	// Limits are the best group's own: a limit set only on a group of
	// worse priority does not apply (unset = no limit).
	Limits Limits
	// From names the group the settings came from; empty when the user has
	// no group, in which case every permission is off and nothing is
	// incompatible.
	From string
}

// Effective computes a user's effective group settings.
func Effective(groups []Group) EffectiveGroup {
	if len(groups) == 0 {
		return EffectiveGroup{}
	}
	best := slices.MinFunc(groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Name, b.Name))
	})
	return EffectiveGroup{
		Permissions:               best.Permissions,
		ExposeUserEnvironmentVars: best.ExposeUserEnvironmentVars,
		InjectSSHKeys:             best.InjectSSHKeys,
		RunConfig:                 best.RunConfig,
		VolumeMapping:             best.VolumeMapping,
		WebFilterPolicy:           best.WebFilterPolicy,
		Limits:                    best.Limits,
		From:                      best.Name,
	}
}

// PermissionsMatch reports whether a staged container started with `staged`
// may be given to a user whose effective permissions are `user`. They must
// be equal: a staged session never grants more, and never less, than the
// user's groups say (the settings are fixed when the container starts).
func PermissionsMatch(staged, user events.Permissions) bool {
	return staged == user
}

// permissionFields are the allow_* fields in the fixed order a difference
// is reported in (the order of the seed and of the API).
var permissionFields = []struct {
	name string
	get  func(events.Permissions) bool
}{
	{"allow_audio", func(p events.Permissions) bool { return p.AllowAudio }},
	{"allow_clipboard_down", func(p events.Permissions) bool { return p.AllowClipboardDown }},
	{"allow_clipboard_up", func(p events.Permissions) bool { return p.AllowClipboardUp }},
	{"allow_downloads", func(p events.Permissions) bool { return p.AllowDownloads }},
	{"allow_microphone", func(p events.Permissions) bool { return p.AllowMicrophone }},
	{"allow_uploads", func(p events.Permissions) bool { return p.AllowUploads }},
	{"allow_gamepad", func(p events.Permissions) bool { return p.AllowGamepad }},
}

// FirstPermissionDifference names the first allow_* field (audio,
// clipboard_down, clipboard_up, downloads, microphone, uploads, gamepad)
// whose value differs between a staged container's permissions and a
// user's; "" when they match.
func FirstPermissionDifference(staged, user events.Permissions) string {
	for _, f := range permissionFields {
		if f.get(staged) != f.get(user) {
			return f.name
		}
	}
	return ""
}
