package local

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
)

// Type is the provider type of the local provider in the API's VM provider
// configs.
const Type = "local_docker"

// Defaults of Config.
const (
	DefaultDockerEndpoint = "unix:///var/run/docker.sock"
	DefaultImage          = "greenroom/agent-engine:latest"
	DefaultNetwork        = "greenroom-agents"
	DefaultCores          = 2.0
	DefaultMemoryMB       = 4096
)

// MinMemoryMB is the least memory a machine may have: its dockerd and
// containerd alone take about 100 MB.
const MinMemoryMB = 256

// Config is the local provider's settings, as the API's VM provider config
// of type local_docker holds them. A zero field takes its default.
type Config struct {
	// DockerEndpoint is the engine that runs the machines, unix:// or
	// tcp:// (DefaultDockerEndpoint).
	DockerEndpoint string `json:"docker_endpoint"`
	// Image is the machines' image, built by scripts/build-agent-image.sh
	// (DefaultImage).
	Image string `json:"image"`
	// Network is the Docker bridge network the machines join, made by the
	// provider when missing (DefaultNetwork). Their engines are reached on
	// their addresses in it, so the provisioner runs where that network is
	// routed: on the host of DockerEndpoint.
	Network string `json:"network"`
	// Cores and MemoryMB are a machine's size when the spec asks for none
	// (DefaultCores, DefaultMemoryMB).
	Cores    float64 `json:"cores"`
	MemoryMB int     `json:"memory_mb"`
}

// WithDefaults is c with each zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.DockerEndpoint == "" {
		c.DockerEndpoint = DefaultDockerEndpoint
	}
	if c.Image == "" {
		c.Image = DefaultImage
	}
	if c.Network == "" {
		c.Network = DefaultNetwork
	}
	if c.Cores == 0 {
		c.Cores = DefaultCores
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	return c
}

var (
	// Docker's rule for network (and container) names.
	nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	// An image reference, loosely: no spaces, no scheme, no upper case
	// in the repository (Docker refuses those).
	imageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$`)
)

// Validate reports the first bad setting of c, naming its field; zero
// fields are valid (they take their defaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case strings.HasPrefix(c.DockerEndpoint, "unix:///"):
	case strings.HasPrefix(c.DockerEndpoint, "tcp://") && len(c.DockerEndpoint) > len("tcp://"):
	default:
		return fmt.Errorf("docker_endpoint: %q is not a unix:///path or tcp://host:port Docker endpoint", c.DockerEndpoint)
	}
	if !imageRE.MatchString(c.Image) || strings.HasSuffix(c.Image, ":") || strings.Contains(c.Image, "//") {
		return fmt.Errorf("image: %q is not an image reference (name[:tag])", c.Image)
	}
	if !nameRE.MatchString(c.Network) {
		return fmt.Errorf("network: %q is not a Docker network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", c.Network)
	}
	if math.IsNaN(c.Cores) || math.IsInf(c.Cores, 0) || c.Cores < 0.01 {
		return fmt.Errorf("cores: %v is not a number of cores of at least 0.01", c.Cores)
	}
	if c.MemoryMB < MinMemoryMB {
		return fmt.Errorf("memory_mb: %d is less than %d", c.MemoryMB, MinMemoryMB)
	}
	return nil
}

// ParseConfig reads a config's JSON settings (unknown fields are an
// error; none at all, or null, is every default) and validates them.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%s settings: %w", Type, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s settings: %w", Type, err)
	}
	return c, nil
}
