package domain

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// Labels every container Greenroom makes carries, so that make down and the
// orphan collector find them (DESIGN.md "Containers").
const (
	LabelManaged       = "greenroom.managed"
	LabelSession       = "greenroom.session"
	LabelStagingConfig = "greenroom.staging_config"
	LabelWorkspace     = "greenroom.workspace"
	LabelZone          = "greenroom.zone"
	LabelAgent         = "greenroom.agent"
)

// Environment variables the provisioner sets in every session container.
const (
	EnvSessionID = "GREENROOM_SESSION_ID"
	EnvPort      = "PORT"
	EnvUser      = "GREENROOM_USER"
	EnvUserID    = "GREENROOM_USER_ID"
)

// ContainerName is the Docker name of a session's container. Docker keeps
// names unique per engine, so a second create for one session fails
// instead of making a twin.
func ContainerName(sessionID string) string { return "greenroom-" + sessionID }

// RunConfig is the part of a workspace's run_config the provisioner
// applies. Kasm's run_config holds docker run options; Greenroom honours
// "environment", a map of variables added to the container's environment
// (the demo workspace uses it for GREENROOM_DEMO_INIT_DELAY). Other keys are
// ignored.
type RunConfig struct {
	Environment map[string]string `json:"environment"`
}

// ParseRunConfig decodes a workspace's run_config. Environment values may
// be JSON strings, numbers or booleans.
func ParseRunConfig(raw []byte) (RunConfig, error) {
	var rc struct {
		Environment map[string]any `json:"environment"`
	}
	if len(raw) == 0 {
		return RunConfig{}, nil
	}
	if err := json.Unmarshal(raw, &rc); err != nil {
		return RunConfig{}, fmt.Errorf("run_config: %w", err)
	}
	env, err := scalarMap("run_config.environment", rc.Environment)
	if err != nil {
		return RunConfig{}, err
	}
	return RunConfig{Environment: env}, nil
}

// SessionContainer is everything that decides how a session's container is
// made.
type SessionContainer struct {
	SessionID       string
	StagingConfigID string // empty for on-demand sessions
	Workspace       string
	Zone            string
	Agent           string
	Image           string
	Port            int
	Need            Resources
	Permissions     events.Permissions
	RunConfig       RunConfig
	// DockerEndpoint decides the address the port is published on.
	DockerEndpoint string
	// ExtraLabels are added to the container's labels (operators' own
	// markers; tests use one to find what they made). Greenroom's labels win.
	ExtraLabels map[string]string
}

// ContainerSpec is a container to create, independent of the Docker API.
type ContainerSpec struct {
	Name   string
	Image  string
	Labels map[string]string
	// Env is sorted KEY=VALUE pairs.
	Env         []string
	NanoCPUs    int64
	MemoryBytes int64
	// Port is the container port published on HostIP at a port Docker
	// chooses.
	Port   int
	HostIP string
}

// BuildContainerSpec turns a session into its container. Greenroom's own
// variables (session id, PORT, the seven GREENROOM_ALLOW_*) win over the
// workspace's run_config environment, so a workspace cannot misreport
// which session or permissions a container has.
func BuildContainerSpec(s SessionContainer) ContainerSpec {
	labels := maps.Clone(s.ExtraLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManaged] = "true"
	labels[LabelSession] = s.SessionID
	labels[LabelWorkspace] = s.Workspace
	labels[LabelZone] = s.Zone
	labels[LabelAgent] = s.Agent
	if s.StagingConfigID != "" {
		labels[LabelStagingConfig] = s.StagingConfigID
	}

	env := maps.Clone(s.RunConfig.Environment)
	if env == nil {
		env = map[string]string{}
	}
	env[EnvSessionID] = s.SessionID
	env[EnvPort] = strconv.Itoa(s.Port)
	maps.Copy(env, PermissionEnv(s.Permissions))

	return ContainerSpec{
		Name:        ContainerName(s.SessionID),
		Image:       s.Image,
		Labels:      labels,
		Env:         envList(env),
		NanoCPUs:    s.Need.MilliCores * 1_000_000,
		MemoryBytes: s.Need.MemoryMB * 1024 * 1024,
		Port:        s.Port,
		HostIP:      PublishHostIP(s.DockerEndpoint),
	}
}

// PermissionEnv is the seven permissions as GREENROOM_ALLOW_AUDIO=true and
// so on: the container learns at start what it may do.
func PermissionEnv(p events.Permissions) map[string]string {
	b := strconv.FormatBool
	return map[string]string{
		"GREENROOM_ALLOW_AUDIO":          b(p.AllowAudio),
		"GREENROOM_ALLOW_CLIPBOARD_DOWN": b(p.AllowClipboardDown),
		"GREENROOM_ALLOW_CLIPBOARD_UP":   b(p.AllowClipboardUp),
		"GREENROOM_ALLOW_DOWNLOADS":      b(p.AllowDownloads),
		"GREENROOM_ALLOW_MICROPHONE":     b(p.AllowMicrophone),
		"GREENROOM_ALLOW_UPLOADS":        b(p.AllowUploads),
		"GREENROOM_ALLOW_GAMEPAD":        b(p.AllowGamepad),
	}
}

// PublishHostIP is the host address a session port is published on: the
// loopback interface for a local (unix socket) engine, whose sessions are
// reached from this host, and every interface for a remote engine.
func PublishHostIP(dockerEndpoint string) string {
	if strings.HasPrefix(dockerEndpoint, "unix://") {
		return "127.0.0.1"
	}
	return "0.0.0.0"
}

// SessionHost is the host a session's published port is reached on: the
// agent's public_host when set, else the host of a tcp:// endpoint, else
// 127.0.0.1 (a local engine).
func SessionHost(publicHost, dockerEndpoint string) string {
	if publicHost != "" {
		return publicHost
	}
	if u, err := url.Parse(dockerEndpoint); err == nil && u.Scheme != "unix" && u.Hostname() != "" {
		return u.Hostname()
	}
	return "127.0.0.1"
}

// SessionURL is the address the user opens: http://host:port/.
func SessionURL(host string, hostPort int) string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(hostPort)) + "/"
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// scalarMap turns JSON scalars into strings; objects and arrays are errors.
func scalarMap(field string, in map[string]any) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("%s: %q is not a variable name", field, k)
		}
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case nil:
			out[k] = ""
		default:
			return nil, fmt.Errorf("%s.%s: want a string, number or boolean, got %T", field, k, v)
		}
	}
	return out, nil
}
