package domain

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
)

func TestContainerSpecCarriesLabelsEnvironmentAndLimits(t *testing.T) {
	t.Parallel()
	spec := BuildContainerSpec(SessionContainer{
		SessionID: "s-1", StagingConfigID: "c-1", Workspace: "demo", Zone: "zone-a", Agent: "a1",
		Image: "greenroom/demo-workspace:latest", Port: 8080,
		Need:        Resources{MilliCores: 1500, MemoryMB: 256},
		Permissions: events.Permissions{AllowAudio: true, AllowGamepad: true},
		RunConfig: containerconfig.RunConfig{Environment: map[string]string{
			"GREENROOM_DEMO_INIT_DELAY": "300ms",
			"PORT":                      "9999", // Greenroom's own value wins
			"GREENROOM_ALLOW_AUDIO":     "false",
		}},
		InternalAddress: "127.0.0.1",
		ExtraLabels:     map[string]string{"greenroom.test": "t1", LabelSession: "spoofed"},
	})
	if spec.Name != "greenroom-s-1" || spec.Image != "greenroom/demo-workspace:latest" {
		t.Errorf("name/image = %q/%q", spec.Name, spec.Image)
	}
	wantLabels := map[string]string{
		LabelManaged: "true", LabelSession: "s-1", LabelStagingConfig: "c-1", LabelWorkspace: "demo",
		LabelZone: "zone-a", LabelAgent: "a1", "greenroom.test": "t1",
		LabelAllowOriginDomain: "", LabelUpstreamAuthAddress: "",
		"greenroom.allow_audio": "true", "greenroom.allow_clipboard_down": "false", "greenroom.allow_clipboard_up": "false",
		"greenroom.allow_downloads": "false", "greenroom.allow_microphone": "false", "greenroom.allow_uploads": "false",
		"greenroom.allow_gamepad": "true",
	}
	if len(spec.Labels) != len(wantLabels) {
		t.Errorf("labels = %v, want %v", spec.Labels, wantLabels)
	}
	for k, v := range wantLabels {
		if spec.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, spec.Labels[k], v)
		}
	}
	wantEnv := []string{
		"GREENROOM_ALLOW_AUDIO=true", "GREENROOM_ALLOW_CLIPBOARD_DOWN=false", "GREENROOM_ALLOW_CLIPBOARD_UP=false",
		"GREENROOM_ALLOW_DOWNLOADS=false", "GREENROOM_ALLOW_GAMEPAD=true", "GREENROOM_ALLOW_MICROPHONE=false",
		"GREENROOM_ALLOW_ORIGIN_DOMAIN=", "GREENROOM_ALLOW_UPLOADS=false", "GREENROOM_DEMO_INIT_DELAY=300ms",
		"GREENROOM_SESSION_ID=s-1", "GREENROOM_UPSTREAM_AUTH_ADDRESS=", "PORT=8080",
	}
	if !slices.Equal(spec.Env, wantEnv) {
		t.Errorf("env\n got %v\nwant %v", spec.Env, wantEnv)
	}
	if spec.NanoCPUs != 1_500_000_000 || spec.MemoryBytes != 256<<20 {
		t.Errorf("limits = %d nano-CPUs, %d bytes", spec.NanoCPUs, spec.MemoryBytes)
	}
	if spec.Port != 8080 || spec.HostIP != "127.0.0.1" {
		t.Errorf("port = %d on %s", spec.Port, spec.HostIP)
	}
}

func TestOnDemandContainerHasNoStagingConfigLabel(t *testing.T) {
	t.Parallel()
	spec := BuildContainerSpec(SessionContainer{SessionID: "s", Port: 80, InternalAddress: "10.0.0.5"})
	if _, ok := spec.Labels[LabelStagingConfig]; ok {
		t.Errorf("on-demand container labelled with a staging config: %v", spec.Labels)
	}
	if spec.HostIP != "10.0.0.5" {
		t.Errorf("port published on %s, want the agent's internal address 10.0.0.5", spec.HostIP)
	}
}

func TestSessionURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		port int
		want string
	}{
		{"127.0.0.1", 32768, "http://127.0.0.1:32768/"},
		{"10.0.0.5", 40000, "http://10.0.0.5:40000/"},
		{"fd00::5", 40000, "http://[fd00::5]:40000/"},
	}
	for _, tt := range tests {
		if got := SessionURL(tt.host, tt.port); got != tt.want {
			t.Errorf("SessionURL(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}

func TestOnDemandContainerKnowsItsUserAndGetsItsSettings(t *testing.T) {
	t.Parallel()
	uid := 2000
	spec := BuildContainerSpec(SessionContainer{
		SessionID: "s-2", Workspace: "demo", Zone: "zone-a", Agent: "a1", Port: 8080,
		AllowOriginDomain: "ws.example.com", UpstreamAuthAddress: "auth.example.com",
		User: &SessionUser{Name: "alice", ID: "u-1"},
		RunConfig: containerconfig.RunConfig{Hostname: "desk", User: "1000", ShmSize: 1 << 20,
			Environment: map[string]string{"GREENROOM_USER": "mallory", "X": "1"}, Labels: map[string]string{"team": "blue"}},
		Home: "/home/kasm-user", Profile: "/profiles/alice",
		Volumes: []containerconfig.VolumeMapping{
			{Host: "/srv/alice", Bind: "/data", UID: &uid, GID: &uid},
			{Host: "/srv/shared", Bind: "/shared", ReadOnly: true},
		},
		AuthorizedKeys:  []byte("ssh-ed25519 AAAA alice\n"),
		UserEnv:         map[string]string{"GREENROOM_USER_TEAM": "blue"},
		WebFilter:       &containerconfig.WebFilter{Name: "kids", AllowedDomains: []string{"example.com"}},
		InternalAddress: "127.0.0.1",
	})
	for _, want := range []string{"GREENROOM_USER=alice", "GREENROOM_USER_ID=u-1", "GREENROOM_SESSION_ID=s-2", "X=1",
		"GREENROOM_ALLOW_ORIGIN_DOMAIN=ws.example.com", "GREENROOM_UPSTREAM_AUTH_ADDRESS=auth.example.com",
		"GREENROOM_USER_TEAM=blue",
		`GREENROOM_WEB_FILTER={"name":"kids","default_allow":false,"allowed_domains":["example.com"],"denied_domains":[]}`} {
		if !slices.Contains(spec.Env, want) {
			t.Errorf("env lacks %s: %v", want, spec.Env)
		}
	}
	if spec.Labels[LabelUser] != "alice" || spec.Labels["team"] != "blue" || spec.Labels["greenroom.allow_audio"] != "false" ||
		spec.Labels[LabelAllowOriginDomain] != "ws.example.com" {
		t.Errorf("labels %v", spec.Labels)
	}
	if spec.Hostname != "desk" || spec.User != "1000" || spec.ShmSize != 1<<20 {
		t.Errorf("run_config not applied: %+v", spec)
	}
	wantBinds := []string{"/profiles/alice:/home/kasm-user:rw", "/srv/alice:/data:rw", "/srv/shared:/shared:ro"}
	if !slices.Equal(spec.Binds, wantBinds) {
		t.Errorf("binds %v, want %v", spec.Binds, wantBinds)
	}
	// The owned rw mapping gets its owner; the ro one cannot; the home
	// (profile) is the home owner's and holds the SSH keys.
	if len(spec.Uploads) != 2 || spec.Uploads[0].Dir != "/" || spec.Uploads[0].Entries[0].Name != "data" || spec.Uploads[0].Entries[0].UID != 2000 {
		t.Fatalf("uploads %+v", spec.Uploads)
	}
	home := spec.Uploads[1]
	if home.Dir != "/home" || len(home.Entries) != 3 || home.Entries[2].Name != "kasm-user/.ssh/authorized_keys" ||
		home.Entries[2].Mode != 0o600 || home.Entries[1].Mode != 0o700 || home.Entries[0].UID != containerconfig.HomeOwner {
		t.Fatalf("home upload %+v", home)
	}
}

func TestStagedContainerCarriesItsPermissionsAndDomainsButNoUser(t *testing.T) {
	t.Parallel()
	spec := BuildContainerSpec(SessionContainer{SessionID: "s-3", StagingConfigID: "c", Port: 8080,
		Permissions:       events.Permissions{AllowUploads: true},
		AllowOriginDomain: "ws.example.com", UpstreamAuthAddress: "auth.example.com", Home: "/home/kasm-user"})
	for _, kv := range spec.Env {
		if strings.HasPrefix(kv, "GREENROOM_USER") {
			t.Errorf("a staged container has no user yet: %s", kv)
		}
	}
	if spec.Labels["greenroom.allow_uploads"] != "true" || spec.Labels[LabelUpstreamAuthAddress] != "auth.example.com" ||
		!slices.Contains(spec.Env, "GREENROOM_ALLOW_ORIGIN_DOMAIN=ws.example.com") {
		t.Errorf("labels %v env %v", spec.Labels, spec.Env)
	}
	if len(spec.Binds) != 0 || len(spec.Uploads) != 0 {
		t.Errorf("nothing to mount: %v %v", spec.Binds, spec.Uploads)
	}
}

func TestSessionURLsPointAtTheGatewayOnTheZonesDomain(t *testing.T) {
	t.Parallel()
	gw, _ := url.Parse("http://127.0.0.1:8090")
	tls, _ := url.Parse("https://gateway.internal")
	tests := []struct {
		gateway *url.URL
		domain  string
		want    string
	}{
		{gw, "greenroom.localhost", "http://greenroom.localhost:8090/session/s-1/"},
		{gw, RequestHost, "http://127.0.0.1:8090/session/s-1/"},
		{gw, "", "http://127.0.0.1:8090/session/s-1/"},
		{tls, "desktops.example.com", "https://desktops.example.com/session/s-1/"},
	}
	for _, tt := range tests {
		if got := GatewaySessionURL(*tt.gateway, tt.domain, "s-1"); got != tt.want {
			t.Errorf("GatewaySessionURL(%s, %q) = %q, want %q", tt.gateway, tt.domain, got, tt.want)
		}
	}
}
