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
