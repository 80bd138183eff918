package domain_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@example"

func TestContainerSettingErrorsNameTheKeyBelowTheSetting(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
	}{
		{"unknown run_config key", `{"name":"w","image":"i","run_config":{"hostname":"h","privileged":true}}`, "run_config.privileged"},
		{"bad run_config value", `{"name":"w","image":"i","run_config":{"cap_add":["net admin"]}}`, "run_config.cap_add[0]"},
		{"relative volume host path", `{"name":"w","image":"i","volume_mappings":{"srv/{username}":{"bind":"/data"}}}`, "volume_mappings.srv/{username}"},
		{"unclean volume bind", `{"name":"w","image":"i","volume_mappings":{"/srv/{username}":{"bind":"/data/../etc"}}}`, "volume_mappings./srv/{username}.bind"},
		{"unknown volume key", `{"name":"w","image":"i","volume_mappings":{"/srv":{"bind":"/x","extra":1}}}`, "volume_mappings./srv.extra"},
		{"relative home directory", `{"name":"w","image":"i","home_directory":"home/user"}`, "home_directory"},
		{"root home directory", `{"name":"w","image":"i","home_directory":"/"}`, "home_directory"},
		{"relative profile path", `{"name":"w","image":"i","persistent_profile_path":"profiles/{username}"}`, "persistent_profile_path"},
		{"profile path escaping with a token", `{"name":"w","image":"i","persistent_profile_path":"/srv/{username}/.."}`, "persistent_profile_path"},
		{"first_launch without cmd", `{"name":"w","image":"i","docker_exec_config":{"first_launch":{"user":"root"}}}`, "docker_exec_config.first_launch.cmd"},
		{"first_launch unknown key", `{"name":"w","image":"i","docker_exec_config":{"first_launch":{"cmd":"x","shell":"sh"}}}`, "docker_exec_config.first_launch.shell"},
		{"empty web filter policy", `{"name":"w","image":"i","web_filter_policy":""}`, "web_filter_policy"},
		{"read-only revision", `{"name":"w","image":"i","revision":3}`, "revision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstError[domain.WorkspaceCreate](t, tc.body); got.Field != tc.field {
				t.Errorf("got %q: %q, want field %q", got.Field, got.Detail, tc.field)
			}
		})
	}
	for _, tc := range []struct {
		name, body, field string
	}{
		{"unknown group run_config key", `{"name":"g","run_config":{"privileged":false}}`, "run_config.privileged"},
		{"bad group volume mapping", `{"name":"g","volume_mapping":{"/srv/{username}":{"bind":"data"}}}`, "volume_mapping./srv/{username}.bind"},
		{"malformed duration", `{"name":"g","session_time_limit":"8 hours"}`, "session_time_limit"},
		{"negative duration", `{"name":"g","keepalive_expiration":"-30m"}`, "keepalive_expiration"},
		{"zero duration", `{"name":"g","session_time_limit":"0s"}`, "session_time_limit"},
		{"sub-microsecond duration", `{"name":"g","session_time_limit":"1ns"}`, "session_time_limit"},
		{"duration not a string", `{"name":"g","session_time_limit":3600}`, "session_time_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstError[domain.GroupCreate](t, tc.body); got.Field != tc.field {
				t.Errorf("got %q: %q, want field %q", got.Field, got.Detail, tc.field)
			}
		})
	}
	for _, tc := range []struct {
		name, body, field string
	}{
		{"bad ssh key", `{"username":"u","ssh_public_keys":["` + sshKey + `","ssh-rsa notbase64"]}`, "ssh_public_keys[1]"},
		{"two-line ssh key", `{"username":"u","ssh_public_keys":["` + sshKey + `\n` + sshKey + `"]}`, "ssh_public_keys[0]"},
		{"bad attribute key", `{"username":"u","attributes":{"dept":"x","cost-centre":"y"}}`, "attributes.cost-centre"},
		{"attribute keys the same variable", `{"username":"u","attributes":{"Dept":"x","dept":"y"}}`, "attributes.dept"},
		{"attribute not a string", `{"username":"u","attributes":{"n":1}}`, "attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstError[domain.UserCreate](t, tc.body); !strings.HasPrefix(got.Field, tc.field) {
				t.Errorf("got %q: %q, want field %q", got.Field, got.Detail, tc.field)
			}
		})
	}
	for _, tc := range []struct {
		name, body, field string
	}{
		{"upper-case domain", `{"name":"p","allowed_domains":["example.com","Example.org"]}`, "allowed_domains[1]"},
		{"url, not a domain", `{"name":"p","denied_domains":["https://example.com"]}`, "denied_domains[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstError[domain.WebFilterPolicyCreate](t, tc.body); got.Field != tc.field {
				t.Errorf("got %q: %q, want field %q", got.Field, got.Detail, tc.field)
			}
		})
	}
}

func TestValidContainerSettingsAreAccepted(t *testing.T) {
	ws := `{"name":"w","image":"i","home_directory":"/home/user","persistent_profile_path":"/srv/profiles/{workspace}/{username}",
		"volume_mappings":{"/srv/{user_id}":{"bind":"/home/user/data","mode":"rw","uid":1000,"gid":1000}},
		"run_config":{"hostname":"desk","environment":{"LANG":"C","N":1},"shm_size":"512m","cap_add":["NET_ADMIN"],
		"dns":["10.0.0.1"],"extra_hosts":{"db":"10.0.0.2"},"labels":{"team":"a"},"user":"1000","working_dir":"/tmp"},
		"web_filter_policy":"strict"}`
	if got := firstError[domain.WorkspaceCreate](t, ws); got != (domain.FieldError{}) {
		t.Errorf("valid workspace refused: %v", got)
	}
	g := `{"name":"g","session_time_limit":"8h","keepalive_expiration":"90s","web_filter_policy":null,
		"run_config":{"environment":{"A":"1"}},"volume_mapping":{"/srv/{username}":{"bind":"/data"}}}`
	if got := firstError[domain.GroupCreate](t, g); got != (domain.FieldError{}) {
		t.Errorf("valid group refused: %v", got)
	}
	u := `{"username":"u","ssh_public_keys":["` + sshKey + `"],"attributes":{"department":"design","employee_id":"4711"}}`
	if got := firstError[domain.UserCreate](t, u); got != (domain.FieldError{}) {
		t.Errorf("valid user refused: %v", got)
	}
}

func TestServerPoolWorkspaceNeedsNoImage(t *testing.T) {
	if got := firstError[domain.WorkspaceCreate](t, `{"name":"w","server_pool":"desktops"}`); got != (domain.FieldError{}) {
		t.Errorf("server-pool workspace without image refused: %v", got)
	}
	if got := firstError[domain.WorkspaceCreate](t, `{"name":"w"}`); got.Field != "image" {
		t.Errorf("workspace without image or server pool: got %v, want image", got)
	}
	var in domain.WorkspaceCreate
	if errs := domain.Decode([]byte(`{"name":"w","server_pool":"desktops"}`), &in, ""); errs != nil {
		t.Fatal(errs)
	}
	w := in.Workspace()
	if w.Cores != domain.WorkspaceCoresDefault || w.MemoryMB != domain.WorkspaceMemoryMBDefault || w.Image != "" ||
		w.HomeDirectory != containerconfig.HomeDirectoryDefault {
		t.Errorf("defaults: %+v", w)
	}
	if errs := w.Validate(); len(errs) != 0 {
		t.Errorf("server-pool workspace: %v", errs)
	}
	// Clearing the server pool of a workspace without an image leaves it
	// with nothing to run.
	var up domain.WorkspaceUpdate
	if errs := domain.Decode([]byte(`{"server_pool":null}`), &up, ""); errs != nil {
		t.Fatal(errs)
	}
	up.Apply(&w)
	if errs := w.Validate(); len(errs) == 0 || errs[0].Field != "image" {
		t.Errorf("workspace with neither image nor server pool: %v", errs)
	}
}

func TestGroupDurationsAreWrittenAsGoDurations(t *testing.T) {
	var in domain.GroupCreate
	if errs := domain.Decode([]byte(`{"name":"g","session_time_limit":"8h","keepalive_expiration":"90s"}`), &in, ""); errs != nil {
		t.Fatal(errs)
	}
	if errs := in.Validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	g := in.Group()
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"session_time_limit":"8h0m0s"`, `"keepalive_expiration":"1m30s"`, `"web_filter_policy":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var up domain.GroupUpdate
	_ = domain.Decode([]byte(`{"session_time_limit":null}`), &up, "")
	up.Apply(&g)
	if g.SessionTimeLimit != nil || g.KeepaliveExpiration == nil || time.Duration(*g.KeepaliveExpiration) != 90*time.Second {
		t.Errorf("patch misapplied: %v, %v", g.SessionTimeLimit, g.KeepaliveExpiration)
	}
	if d, err := domain.ParseDuration("1h30m"); err != nil || d != 90*time.Minute {
		t.Errorf("ParseDuration(1h30m) = %v, %v", d, err)
	}
}

// The smallest staging config serves the users of the smallest group:
// both start from the same permissions.
func TestStagingConfigWithoutPermissionsGrantsWhatADefaultGroupGrants(t *testing.T) {
	var in domain.StagingConfigCreate
	if errs := domain.Decode([]byte(`{"zone":"eu","workspace":"demo","desired_sessions":1}`), &in, ""); errs != nil {
		t.Fatal(errs)
	}
	if got, want := in.StagingConfig().Permissions, (domain.GroupCreate{}).Group().Permissions; got != want {
		t.Errorf("staging config permissions %+v, a default group's %+v", got, want)
	}
	_ = domain.Decode([]byte(`{"zone":"eu","workspace":"demo","desired_sessions":1,"allow_audio":false}`), &in, "")
	if p := in.StagingConfig().Permissions; p.AllowAudio || !p.AllowGamepad {
		t.Errorf("given permissions not kept: %+v", p)
	}
}

func TestWebFilterPolicyDomainInBothListsIsRefused(t *testing.T) {
	var in domain.WebFilterPolicyCreate
	if errs := domain.Decode([]byte(`{"name":"p","allowed_domains":["a.example"],"denied_domains":["b.example","a.example"]}`), &in, ""); errs != nil {
		t.Fatal(errs)
	}
	p := in.WebFilterPolicy()
	if errs := p.Validate(); len(errs) != 1 || errs[0].Field != "denied_domains[1]" {
		t.Errorf("errors %v", errs)
	}
	if !(domain.WebFilterPolicyCreate{}).WebFilterPolicy().DefaultAllow {
		t.Error("a policy allows unlisted domains unless told")
	}
}

func TestEmptyUserSettingsAreNeverNull(t *testing.T) {
	b, err := json.Marshal(domain.User{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"ssh_public_keys":[]`, `"attributes":{}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}
