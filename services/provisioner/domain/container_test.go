package domain

import (
	"slices"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/events"
)

func TestContainerSpecCarriesLabelsEnvironmentAndLimits(t *testing.T) {
	t.Parallel()
	spec := BuildContainerSpec(SessionContainer{
		SessionID: "s-1", StagingConfigID: "c-1", Workspace: "demo", Zone: "zone-a", Agent: "a1",
		Image: "greenroom/demo-workspace:latest", Port: 8080,
		Need:        Resources{MilliCores: 1500, MemoryMB: 256},
		Permissions: events.Permissions{AllowAudio: true, AllowGamepad: true},
		RunConfig: RunConfig{Environment: map[string]string{
			"GREENROOM_DEMO_INIT_DELAY": "300ms",
			"PORT":                      "9999", // Greenroom's own value wins
			"GREENROOM_ALLOW_AUDIO":     "false",
		}},
		DockerEndpoint: "unix:///var/run/docker.sock",
		ExtraLabels:    map[string]string{"greenroom.test": "t1", LabelSession: "spoofed"},
	})
	if spec.Name != "greenroom-s-1" || spec.Image != "greenroom/demo-workspace:latest" {
		t.Errorf("name/image = %q/%q", spec.Name, spec.Image)
	}
	wantLabels := map[string]string{
		LabelManaged: "true", LabelSession: "s-1", LabelStagingConfig: "c-1", LabelWorkspace: "demo",
		LabelZone: "zone-a", LabelAgent: "a1", "greenroom.test": "t1",
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
		"GREENROOM_ALLOW_UPLOADS=false", "GREENROOM_DEMO_INIT_DELAY=300ms", "GREENROOM_SESSION_ID=s-1", "PORT=8080",
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
	spec := BuildContainerSpec(SessionContainer{SessionID: "s", Port: 80, DockerEndpoint: "tcp://10.0.0.5:2375"})
	if _, ok := spec.Labels[LabelStagingConfig]; ok {
		t.Errorf("on-demand container labelled with a staging config: %v", spec.Labels)
	}
	if spec.HostIP != "0.0.0.0" {
		t.Errorf("remote engine publishes on %s, want 0.0.0.0", spec.HostIP)
	}
}

func TestSessionURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		publicHost, endpoint string
		port                 int
		want                 string
	}{
		{"", "unix:///var/run/docker.sock", 32768, "http://127.0.0.1:32768/"},
		{"", "tcp://10.0.0.5:2375", 40000, "http://10.0.0.5:40000/"},
		{"ws1.example.com", "tcp://10.0.0.5:2375", 40000, "http://ws1.example.com:40000/"},
		{"", "tcp://[fd00::5]:2376", 40000, "http://[fd00::5]:40000/"},
		{"", "npipe:////./pipe/docker_engine", 1, "http://127.0.0.1:1/"},
	}
	for _, tt := range tests {
		if got := SessionURL(SessionHost(tt.publicHost, tt.endpoint), tt.port); got != tt.want {
			t.Errorf("SessionURL(%q, %q, %d) = %q, want %q", tt.publicHost, tt.endpoint, tt.port, got, tt.want)
		}
	}
}

func TestParseRunConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		want    map[string]string
		wantErr bool
	}{
		{raw: ``, want: nil},
		{raw: `{}`, want: nil},
		{raw: `{"hostname": "kasm", "environment": {"A": "x", "N": 3, "B": true}}`, want: map[string]string{"A": "x", "N": "3", "B": "true"}},
		{raw: `{"environment": {"A": {"nested": 1}}}`, wantErr: true},
		{raw: `{"environment": {"A=B": "x"}}`, wantErr: true},
		{raw: `[1]`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseRunConfig([]byte(tt.raw))
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseRunConfig(%s) error = %v, want error %v", tt.raw, err, tt.wantErr)
			continue
		}
		if len(got.Environment) != len(tt.want) {
			t.Errorf("ParseRunConfig(%s) = %v, want %v", tt.raw, got.Environment, tt.want)
		}
		for k, v := range tt.want {
			if got.Environment[k] != v {
				t.Errorf("ParseRunConfig(%s)[%s] = %q, want %q", tt.raw, k, got.Environment[k], v)
			}
		}
	}
}
