package domain

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

var allOn = events.Permissions{
	AllowAudio: true, AllowClipboardDown: true, AllowClipboardUp: true, AllowDownloads: true,
	AllowMicrophone: true, AllowUploads: true, AllowGamepad: true,
}

func TestEffectivePermissionsBestPriorityWins(t *testing.T) {
	noAudio := allOn
	noAudio.AllowAudio = false
	cases := []struct {
		name   string
		groups []Group
		want   events.Permissions
		from   string
	}{
		{"no group means everything off", nil, events.Permissions{}, ""},
		{"single group", []Group{{Name: "all", Priority: 100, Permissions: allOn}}, allOn, "all"},
		{"lower number wins", []Group{
			{Name: "all", Priority: 100, Permissions: allOn},
			{Name: "restricted", Priority: 1, Permissions: noAudio},
		}, noAudio, "restricted"},
		{"order of input does not matter", []Group{
			{Name: "restricted", Priority: 1, Permissions: noAudio},
			{Name: "all", Priority: 100, Permissions: allOn},
		}, noAudio, "restricted"},
		{"equal priority resolved by name", []Group{
			{Name: "b", Priority: 5, Permissions: allOn},
			{Name: "a", Priority: 5, Permissions: noAudio},
		}, noAudio, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Effective(c.groups)
			if got.Permissions != c.want || got.From != c.from {
				t.Fatalf("Effective = %+v from %q, want %+v from %q", got.Permissions, got.From, c.want, c.from)
			}
		})
	}
}

func TestStagedSessionNotAssignedWhenAnyPermissionDiffers(t *testing.T) {
	if !PermissionsMatch(allOn, allOn) {
		t.Fatal("equal permissions must match")
	}
	flips := map[string]func(*events.Permissions){
		"allow_audio":          func(p *events.Permissions) { p.AllowAudio = false },
		"allow_clipboard_down": func(p *events.Permissions) { p.AllowClipboardDown = false },
		"allow_clipboard_up":   func(p *events.Permissions) { p.AllowClipboardUp = false },
		"allow_downloads":      func(p *events.Permissions) { p.AllowDownloads = false },
		"allow_microphone":     func(p *events.Permissions) { p.AllowMicrophone = false },
		"allow_uploads":        func(p *events.Permissions) { p.AllowUploads = false },
		"allow_gamepad":        func(p *events.Permissions) { p.AllowGamepad = false },
	}
	for name, flip := range flips {
		t.Run(name, func(t *testing.T) {
			user := allOn
			flip(&user)
			if PermissionsMatch(allOn, user) {
				t.Fatalf("a user without %s must not get a staged session started with it", name)
			}
			if PermissionsMatch(user, allOn) {
				t.Fatalf("a user with %s must not get a staged session started without it", name)
			}
		})
	}
}

func TestIncompatibleSettingsForceOnDemand(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	cases := []struct {
		name string
		ws   Workspace
		g    EffectiveGroup
		want []Setting
	}{
		{"nothing set", Workspace{}, EffectiveGroup{}, nil},
		{"empty json is not set", Workspace{VolumeMappings: raw(`{}`)}, EffectiveGroup{RunConfig: raw(`{}`), VolumeMapping: raw(`null`)}, nil},
		{"persistent profile", Workspace{PersistentProfilePath: "/profiles/{username}"}, EffectiveGroup{}, []Setting{SettingPersistentProfile}},
		{"volume mapping with {username}", Workspace{VolumeMappings: raw(`{"/home/{username}":{"bind":"/home/user","mode":"rw"}}`)}, EffectiveGroup{}, []Setting{SettingVolumeMappings}},
		{"volume mapping with {user_id} in a value", Workspace{VolumeMappings: raw(`{"/data":{"bind":"/mnt/{user_id}","mode":"rw"}}`)}, EffectiveGroup{}, []Setting{SettingVolumeMappings}},
		{"fixed volume mapping is compatible", Workspace{VolumeMappings: raw(`{"/srv/shared":{"bind":"/shared","mode":"ro"}}`)}, EffectiveGroup{}, nil},
		{"expose_user_environment_vars", Workspace{}, EffectiveGroup{ExposeUserEnvironmentVars: true}, []Setting{SettingExposeUserEnvironmentVars}},
		{"inject_ssh_keys", Workspace{}, EffectiveGroup{InjectSSHKeys: true}, []Setting{SettingInjectSSHKeys}},
		{"run_config", Workspace{}, EffectiveGroup{RunConfig: raw(`{"hostname":"x"}`)}, []Setting{SettingRunConfig}},
		{"volume_mapping", Workspace{}, EffectiveGroup{VolumeMapping: raw(`{"/a":{"bind":"/b"}}`)}, []Setting{SettingVolumeMapping}},
		{"web_filter_policy", Workspace{}, EffectiveGroup{WebFilterPolicy: "strict"}, []Setting{SettingWebFilterPolicy}},
		{"several, in fixed order", Workspace{PersistentProfilePath: "/p"}, EffectiveGroup{InjectSSHKeys: true, WebFilterPolicy: "x"},
			[]Setting{SettingPersistentProfile, SettingInjectSSHKeys, SettingWebFilterPolicy}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := IncompatibleSettings(c.ws, c.g)
			if !slices.Equal(got, c.want) {
				t.Fatalf("IncompatibleSettings = %v, want %v", got, c.want)
			}
		})
	}
}

func TestZoneSearchOrder(t *testing.T) {
	a := Zone{ID: "a", Name: "zone-a", Priority: 10, SearchAlternateZones: true}
	b := Zone{ID: "b", Name: "zone-b", Priority: 20}
	c := Zone{ID: "c", Name: "zone-c", Priority: 5}
	d := Zone{ID: "d", Name: "zone-d", Priority: 5}
	names := func(zs []Zone) []string {
		var out []string
		for _, z := range zs {
			out = append(out, z.Name)
		}
		return out
	}
	if got := names(ZoneSearchOrder(a, []Zone{b, a, d, c})); !slices.Equal(got, []string{"zone-a", "zone-c", "zone-d", "zone-b"}) {
		t.Fatalf("with alternates: %v", got)
	}
	if got := names(ZoneSearchOrder(b, []Zone{a, b, c})); !slices.Equal(got, []string{"zone-b"}) {
		t.Fatalf("without alternates only the request's zone: %v", got)
	}
}

func TestZoneSearchStepIsTheZonesPlaceInTheSearchOrder(t *testing.T) {
	a := Zone{ID: "a", Name: "zone-a", Priority: 10, SearchAlternateZones: true}
	b := Zone{ID: "b", Name: "zone-b", Priority: 20}
	c := Zone{ID: "c", Name: "zone-c", Priority: 5}
	withAlternates := ZoneSearchOrder(a, []Zone{b, a, c}) // zone-a, zone-c, zone-b
	without := ZoneSearchOrder(b, []Zone{a, b, c})        // zone-b only
	for _, tc := range []struct {
		name  string
		order []Zone
		zone  string
		want  int
	}{
		{"the requested zone is step 1", withAlternates, "a", 1},
		{"the first alternate, by priority, is step 2", withAlternates, "c", 2},
		{"the last alternate is step 3", withAlternates, "b", 3},
		{"without alternates the requested zone is step 1", without, "b", 1},
		{"a zone the search never reached is step 0", without, "a", 0},
		{"an unknown zone is step 0", withAlternates, "x", 0},
		{"an empty order has no step", nil, "a", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ZoneSearchStep(tc.order, tc.zone); got != tc.want {
				t.Errorf("ZoneSearchStep(%s) = %d, want %d", tc.zone, got, tc.want)
			}
		})
	}
}

func TestPlanFollowsTheSeedOrder(t *testing.T) {
	ws := Workspace{ID: "w", Name: "demo", Enabled: true}
	a := Zone{ID: "a", Name: "zone-a", Priority: 1, SearchAlternateZones: true}
	b := Zone{ID: "b", Name: "zone-b", Priority: 2}
	everyone := []Group{{Name: "everyone", Priority: 100, Permissions: allOn}}
	cfgA := StagingConfig{ID: "ca", ZoneID: "a", WorkspaceID: "w", Permissions: allOn}
	cfgB := StagingConfig{ID: "cb", ZoneID: "b", WorkspaceID: "w", Permissions: allOn}
	otherWS := StagingConfig{ID: "cx", ZoneID: "a", WorkspaceID: "other", Permissions: allOn}
	noAudio := allOn
	noAudio.AllowAudio = false

	ids := func(cs []StagingConfig) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	t.Run("staged here, then staged in other zones, then on demand here and elsewhere", func(t *testing.T) {
		p := PlanRequest(ws, a, []Zone{b, a}, everyone, []StagingConfig{cfgB, otherWS, cfgA})
		if got := ids(p.StagedCandidates); !slices.Equal(got, []string{"ca", "cb"}) {
			t.Fatalf("staged candidates %v", got)
		}
		if len(p.OnDemandZones) != 2 || p.OnDemandZones[0].ID != "a" || p.OnDemandZones[1].ID != "b" {
			t.Fatalf("on-demand zones %v", p.OnDemandZones)
		}
	})
	t.Run("alternate search off keeps everything in the request's zone", func(t *testing.T) {
		p := PlanRequest(ws, b, []Zone{a, b}, everyone, []StagingConfig{cfgA, cfgB})
		if got := ids(p.StagedCandidates); !slices.Equal(got, []string{"cb"}) {
			t.Fatalf("staged candidates %v", got)
		}
		if len(p.OnDemandZones) != 1 || p.OnDemandZones[0].ID != "b" {
			t.Fatalf("on-demand zones %v", p.OnDemandZones)
		}
	})
	t.Run("differing permissions leave only on demand", func(t *testing.T) {
		p := PlanRequest(ws, a, []Zone{a, b}, []Group{{Name: "g", Priority: 1, Permissions: noAudio}}, []StagingConfig{cfgA, cfgB})
		if len(p.StagedCandidates) != 0 || p.Miss != MissPermissions {
			t.Fatalf("plan %+v", p)
		}
	})
	t.Run("a workspace on a server pool goes to its servers in the zone search order, without staging or violations", func(t *testing.T) {
		onServers := Workspace{ID: "w", OnServers: true, PersistentProfilePath: "/p"}
		p := PlanRequest(onServers, a, []Zone{b, a}, everyone, []StagingConfig{cfgA, cfgB})
		if len(p.StagedCandidates) != 0 || len(p.Violations) != 0 || p.Miss != MissOnServers ||
			len(p.OnDemandZones) != 2 || p.OnDemandZones[0].ID != "a" || p.OnDemandZones[1].ID != "b" {
			t.Fatalf("plan %+v", p)
		}
	})
	t.Run("an incompatible setting leaves only on demand and names the setting", func(t *testing.T) {
		p := PlanRequest(Workspace{ID: "w", PersistentProfilePath: "/p"}, a, []Zone{a}, everyone, []StagingConfig{cfgA})
		if len(p.StagedCandidates) != 0 || p.Miss != MissIncompatible || !slices.Equal(p.Violations, []Setting{SettingPersistentProfile}) {
			t.Fatalf("plan %+v", p)
		}
	})
	t.Run("no staging config at all", func(t *testing.T) {
		p := PlanRequest(ws, a, []Zone{a}, everyone, nil)
		if p.Miss != MissNoStagingConfig || len(p.OnDemandZones) != 1 {
			t.Fatalf("plan %+v", p)
		}
	})
}

func TestEffectiveLimitsComeFromTheBestPriorityGroup(t *testing.T) {
	hour := Limits{SessionTimeLimit: time.Hour, KeepaliveExpiration: 10 * time.Minute}
	cases := []struct {
		name   string
		groups []Group
		want   Limits
	}{
		{"no group, no limit", nil, Limits{}},
		{"the group's limits", []Group{{Name: "g", Priority: 1, Limits: hour}}, hour},
		{"best priority wins", []Group{
			{Name: "loose", Priority: 50, Limits: Limits{SessionTimeLimit: 8 * time.Hour}},
			{Name: "strict", Priority: 1, Limits: hour},
		}, hour},
		{"unset on the best group is no limit, whatever worse groups say", []Group{
			{Name: "limited", Priority: 50, Limits: hour},
			{Name: "unlimited", Priority: 1},
		}, Limits{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Effective(c.groups).Limits; got != c.want {
				t.Fatalf("limits %+v, want %+v", got, c.want)
			}
			p := PlanRequest(Workspace{ID: "w"}, Zone{ID: "a"}, nil, c.groups, nil)
			if p.Limits != c.want {
				t.Fatalf("plan limits %+v, want %+v", p.Limits, c.want)
			}
		})
	}
}

func TestFirstPermissionDifferenceFollowsTheFixedOrder(t *testing.T) {
	if got := FirstPermissionDifference(allOn, allOn); got != "" {
		t.Fatalf("equal permissions differ in %q", got)
	}
	noUploadsNoGamepad := allOn
	noUploadsNoGamepad.AllowUploads, noUploadsNoGamepad.AllowGamepad = false, false
	if got := FirstPermissionDifference(allOn, noUploadsNoGamepad); got != "allow_uploads" {
		t.Fatalf("first difference %q, want allow_uploads (before allow_gamepad)", got)
	}
	if got := FirstPermissionDifference(events.Permissions{}, allOn); got != "allow_audio" {
		t.Fatalf("first difference %q, want allow_audio", got)
	}
}

// Issue 10, point 5: every on-demand session says why it was not served
// staged.
func TestOnDemandReasonSaysWhyNoStagedSession(t *testing.T) {
	ws := Workspace{ID: "w", Name: "demo", Enabled: true}
	a := Zone{ID: "a", Name: "zone-a", Priority: 1, SearchAlternateZones: true}
	b := Zone{ID: "b", Name: "zone-b", Priority: 2}
	everyone := Group{Name: "everyone", Priority: 100, Permissions: allOn}
	cfgA := StagingConfig{ID: "ca", ZoneID: "a", WorkspaceID: "w", Permissions: allOn}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	with := func(f func(*Group)) []Group { g := everyone; f(&g); return []Group{g} }
	type reasonCase struct {
		name    string
		ws      Workspace
		groups  []Group
		configs []StagingConfig
		// noneStaged: the plan has staged candidates and every claim came
		// back empty, which the app marks before asking for the reason.
		noneStaged bool
		want       string
	}
	cases := []reasonCase{
		{"no staging config at all", ws, []Group{everyone}, nil, false, "no_staging_config"},
		{"staging configs only of other workspaces", ws, []Group{everyone},
			[]StagingConfig{{ID: "cx", ZoneID: "a", WorkspaceID: "other", Permissions: allOn}}, false, "no_staging_config"},
		{"a matching config with nothing staged", ws, []Group{everyone}, []StagingConfig{cfgA}, true, "none_staged"},
		{"a server pool workspace", Workspace{ID: "w", OnServers: true}, []Group{everyone}, []StagingConfig{cfgA}, false, "server_pool"},
		{"the first violation names the setting", Workspace{ID: "w", PersistentProfilePath: "/p/{username}"},
			with(func(g *Group) { g.InjectSSHKeys = true }), []StagingConfig{cfgA}, false, "incompatible:persistent_profile"},
		{"volume_mappings", Workspace{ID: "w", VolumeMappings: raw(`{"/h/{username}":{"bind":"/b"}}`)}, []Group{everyone},
			[]StagingConfig{cfgA}, false, "incompatible:volume_mappings"},
		{"expose_user_environment_vars", ws, with(func(g *Group) { g.ExposeUserEnvironmentVars = true }), []StagingConfig{cfgA}, false,
			"incompatible:expose_user_environment_vars"},
		{"inject_ssh_keys", ws, with(func(g *Group) { g.InjectSSHKeys = true }), []StagingConfig{cfgA}, false, "incompatible:inject_ssh_keys"},
		{"run_config", ws, with(func(g *Group) { g.RunConfig = raw(`{"hostname":"x"}`) }), []StagingConfig{cfgA}, false, "incompatible:run_config"},
		{"volume_mapping", ws, with(func(g *Group) { g.VolumeMapping = raw(`{"/a":{"bind":"/b"}}`) }), []StagingConfig{cfgA}, false,
			"incompatible:volume_mapping"},
		{"web_filter_policy", ws, with(func(g *Group) { g.WebFilterPolicy = "strict" }), []StagingConfig{cfgA}, false,
			"incompatible:web_filter_policy"},
	}
	// The user lacks exactly one permission the staging config grants.
	for _, f := range []struct {
		field string
		off   func(*events.Permissions)
	}{
		{"allow_audio", func(p *events.Permissions) { p.AllowAudio = false }},
		{"allow_clipboard_down", func(p *events.Permissions) { p.AllowClipboardDown = false }},
		{"allow_clipboard_up", func(p *events.Permissions) { p.AllowClipboardUp = false }},
		{"allow_downloads", func(p *events.Permissions) { p.AllowDownloads = false }},
		{"allow_microphone", func(p *events.Permissions) { p.AllowMicrophone = false }},
		{"allow_uploads", func(p *events.Permissions) { p.AllowUploads = false }},
		{"allow_gamepad", func(p *events.Permissions) { p.AllowGamepad = false }},
	} {
		cases = append(cases, reasonCase{"permissions differ in " + f.field, ws,
			with(func(g *Group) { f.off(&g.Permissions) }), []StagingConfig{cfgA}, false, "permissions_differ:" + f.field})
	}
	// Configs in both zones differ, in different fields: the first config in
	// zone search order (the request's zone) names the field, whatever
	// order the configs come in.
	noMic, noGamepad := allOn, allOn
	noMic.AllowMicrophone, noGamepad.AllowGamepad = false, false
	cases = append(cases, reasonCase{"the first config in zone search order names the field", ws, []Group{everyone}, []StagingConfig{
		{ID: "cb", ZoneID: "b", WorkspaceID: "w", Permissions: noMic},
		{ID: "ca", ZoneID: "a", WorkspaceID: "w", Permissions: noGamepad},
	}, false, "permissions_differ:allow_gamepad"})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := PlanRequest(c.ws, a, []Zone{b, a}, c.groups, c.configs)
			if c.noneStaged {
				if len(p.StagedCandidates) == 0 {
					t.Fatalf("plan %+v has no staged candidate", p)
				}
				p.Miss = MissNoneStaged
			} else if len(p.StagedCandidates) != 0 {
				t.Fatalf("plan %+v has staged candidates", p)
			}
			if got := OnDemandReason(p); got != c.want {
				t.Fatalf("OnDemandReason = %q, want %q", got, c.want)
			}
		})
	}
}
