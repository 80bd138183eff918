package local_test

import (
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm/local"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	got := local.Config{}.WithDefaults()
	want := local.Config{
		DockerEndpoint: "unix:///var/run/docker.sock",
		Image:          "greenroom/agent-engine:latest",
		Network:        "greenroom-agents",
		Cores:          2,
		MemoryMB:       4096,
	}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	if err := (local.Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   local.Config
		field string // "" when valid
	}{
		{"tcp endpoint", local.Config{DockerEndpoint: "tcp://10.0.0.1:2375"}, ""},
		{"tagged image", local.Config{Image: "registry.local:5000/agent-engine:1.2"}, ""},
		{"fractional cores", local.Config{Cores: 0.5, MemoryMB: 512}, ""},
		{"http endpoint", local.Config{DockerEndpoint: "http://localhost"}, "docker_endpoint"},
		{"relative socket", local.Config{DockerEndpoint: "unix://docker.sock"}, "docker_endpoint"},
		{"bare tcp", local.Config{DockerEndpoint: "tcp://"}, "docker_endpoint"},
		{"image with a space", local.Config{Image: "greenroom/agent engine"}, "image"},
		{"image in upper case", local.Config{Image: "Greenroom/agent"}, "image"},
		{"image ending in a colon", local.Config{Image: "greenroom/agent:"}, "image"},
		{"network with a slash", local.Config{Network: "a/b"}, "network"},
		{"network starting with a dash", local.Config{Network: "-agents"}, "network"},
		{"negative cores", local.Config{Cores: -1}, "cores"},
		{"too few cores", local.Config{Cores: 0.001}, "cores"},
		{"negative memory", local.Config{MemoryMB: -1}, "memory_mb"},
		{"too little memory", local.Config{MemoryMB: 100}, "memory_mb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.field != "" && err == nil:
				t.Errorf("Validate: no error, want one naming %s", tc.field)
			case tc.field != "" && !strings.HasPrefix(err.Error(), tc.field+": "):
				t.Errorf("Validate: %q does not start with the field %s", err, tc.field)
			}
			if _, err := local.New(tc.cfg); (err == nil) != (tc.field == "") {
				t.Errorf("New: %v", err)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	c, err := local.ParseConfig([]byte(`{"docker_endpoint": "unix:///run/docker.sock", "image": "a/b:c", "network": "n", "cores": 1.5, "memory_mb": 2048}`))
	if err != nil {
		t.Fatal(err)
	}
	want := local.Config{DockerEndpoint: "unix:///run/docker.sock", Image: "a/b:c", Network: "n", Cores: 1.5, MemoryMB: 2048}
	if c != want {
		t.Errorf("parsed %+v, want %+v", c, want)
	}
	for _, empty := range []string{"", " ", "null", "{}"} {
		if c, err := local.ParseConfig([]byte(empty)); err != nil || c != (local.Config{}) {
			t.Errorf("ParseConfig(%q): %+v, %v; want the zero config", empty, c, err)
		}
	}
	for body, want := range map[string]string{
		`{"cpus": 2}`:          `unknown field "cpus"`,
		`{"memory_mb": "4GB"}`: `cannot unmarshal string`,
		`{"cores": -2}`:        `cores: -2`,
	} {
		if _, err := local.ParseConfig([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfig(%s): %v, want %q", body, err, want)
		}
	}
}
