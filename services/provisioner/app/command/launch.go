package command

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// applySettings puts on c what the workspace and, for a session made for a
// user (on demand), the user and the user's effective group say the
// container gets: the merged run_config, the persistent profile and the
// volume mappings (tokens substituted), the SSH keys, the exposed
// attributes and the web filter policy (the group's, else the
// workspace's). A staged container has no user yet: it gets the
// workspace's settings that need none, which are the only ones a staged
// session may have (rule 4); the user's own arrive on demand.
func applySettings(c *domain.SessionContainer, sc SessionContext, u *SessionUser) error {
	ws := sc.Workspace
	t := containerconfig.Tokens{Workspace: ws.Name, SessionID: sc.Session.ID}
	var g *EffectiveGroup
	if u != nil {
		t.Username, t.UserID = u.Name, u.ID
		c.User = &domain.SessionUser{Name: u.Name, ID: u.ID}
		g = u.Group
	}
	c.Home = ws.HomeDirectory
	if c.Home == "" {
		c.Home = containerconfig.HomeDirectoryDefault
	}

	runConfig := ws.RunConfig
	if g != nil {
		merged, errs := containerconfig.MergeRunConfig(ws.RunConfig, g.RunConfig)
		if len(errs) > 0 {
			return fmt.Errorf("run_config of workspace %s and group %s: %v", ws.Name, g.Name, errs)
		}
		runConfig = merged
	}
	rc, errs := containerconfig.ParseRunConfig(runConfig)
	if len(errs) > 0 {
		return fmt.Errorf("run_config: %v", errs)
	}
	c.RunConfig = rc

	if ws.PersistentProfilePath != "" && u != nil {
		p, err := containerconfig.ProfilePath(ws.PersistentProfilePath, t)
		if err != nil {
			return fmt.Errorf("workspace %s: %w", ws.Name, err)
		}
		c.Profile = p
	}
	// Volumes by where they are mounted: the group's win over the
	// workspace's at the same place.
	byBind := map[string]containerconfig.VolumeMapping{}
	add := func(owner string, raw []byte) error {
		ms, errs := containerconfig.ParseVolumeMappings(raw)
		if len(errs) > 0 {
			return fmt.Errorf("volume mappings of %s: %v", owner, errs)
		}
		for _, m := range ms {
			if m.UsesUserToken() && u == nil {
				continue // per user: never on a staged container
			}
			r, err := m.Render(t)
			if err != nil {
				return fmt.Errorf("volume mappings of %s: %w", owner, err)
			}
			byBind[r.Bind] = r
		}
		return nil
	}
	if err := add("workspace "+ws.Name, ws.VolumeMappings); err != nil {
		return err
	}
	if g != nil {
		if err := add("group "+g.Name, g.VolumeMapping); err != nil {
			return err
		}
	}
	for _, b := range slices.Sorted(maps.Keys(byBind)) {
		if c.Profile != "" && b == path.Clean(c.Home) {
			return fmt.Errorf("volume mapping %s is mounted at the home directory %s, where the persistent profile is", byBind[b].Host, b)
		}
		c.Volumes = append(c.Volumes, byBind[b])
	}

	filter := ws.WebFilter
	if g != nil {
		if g.InjectSSHKeys {
			c.AuthorizedKeys = containerconfig.AuthorizedKeys(u.SSHPublicKeys)
		}
		if g.ExposeUserEnvironmentVars && len(u.Attributes) > 0 {
			var attrs map[string]string
			if err := json.Unmarshal(u.Attributes, &attrs); err != nil {
				return fmt.Errorf("attributes of user %s: %w", u.Name, err)
			}
			c.UserEnv = containerconfig.UserEnv(attrs)
		}
		if g.WebFilter != nil {
			filter = g.WebFilter
		}
	}
	if filter != nil {
		var wf containerconfig.WebFilter
		if err := json.Unmarshal(filter, &wf); err != nil {
			return fmt.Errorf("web filter policy: %w", err)
		}
		c.WebFilter = &wf
	}
	return nil
}
