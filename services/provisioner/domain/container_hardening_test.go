package domain

import (
	"slices"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
)

// TestContainerSpecIsHardenedUnlessRunConfigSaysOtherwise: every spec
// carries no-new-privileges, CapDrop ALL with the default set added back
// and the default pids limit; a run_config changes each, staged (no user)
// or not.
func TestContainerSpecIsHardenedUnlessRunConfigSaysOtherwise(t *testing.T) {
	t.Parallel()
	base := SessionContainer{SessionID: "s-1", Workspace: "demo", Image: "img", Port: 8080}
	for _, user := range []*SessionUser{nil, {Name: "alice", ID: "u-1"}} {
		c := base
		c.User = user
		spec := BuildContainerSpec(c)
		if !slices.Equal(spec.CapDrop, []string{"ALL"}) || !slices.Equal(spec.CapAdd, containerconfig.DefaultCapabilities) ||
			!slices.Equal(spec.SecurityOpt, []string{containerconfig.NoNewPrivileges}) || spec.PidsLimit != containerconfig.PidsLimitDefault {
			t.Errorf("user %v: cap_add %v cap_drop %v security_opt %v pids %d", user, spec.CapAdd, spec.CapDrop, spec.SecurityOpt, spec.PidsLimit)
		}
	}
	rc, errs := containerconfig.ParseRunConfig([]byte(`{"cap_drop":"ALL","cap_add":["NET_BIND_SERVICE"],
		"security_opt":["no-new-privileges=false","apparmor=unconfined"],"pids_limit":-1}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c := base
	c.RunConfig = rc
	spec := BuildContainerSpec(c)
	if !slices.Equal(spec.CapDrop, []string{"ALL"}) || !slices.Equal(spec.CapAdd, []string{"NET_BIND_SERVICE"}) ||
		!slices.Equal(spec.SecurityOpt, []string{"no-new-privileges=false", "apparmor=unconfined"}) || spec.PidsLimit != -1 {
		t.Errorf("overridden: cap_add %v cap_drop %v security_opt %v pids %d", spec.CapAdd, spec.CapDrop, spec.SecurityOpt, spec.PidsLimit)
	}
}
