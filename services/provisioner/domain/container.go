package domain

import (
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
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

// Environment variables the provisioner sets in session containers.
const (
	EnvSessionID             = "GREENROOM_SESSION_ID"
	EnvPort                  = "PORT"
	EnvUser                  = "GREENROOM_USER"
	EnvUserID                = "GREENROOM_USER_ID"
	EnvAllowOriginDomain     = "GREENROOM_ALLOW_ORIGIN_DOMAIN"
	EnvUpstreamAuthAddress   = "GREENROOM_UPSTREAM_AUTH_ADDRESS"
	LabelUser                = "greenroom.user"
	LabelAllowOriginDomain   = "greenroom.allow_origin_domain"
	LabelUpstreamAuthAddress = "greenroom.upstream_auth_address"
)

// ContainerName is the Docker name of a session's container. Docker keeps
// names unique per engine, so a second create for one session fails
// instead of making a twin.
func ContainerName(sessionID string) string { return "greenroom-" + sessionID }

// SessionUser is the user an on-demand container is made for.
type SessionUser struct {
	Name string
	ID   string
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
	// AllowOriginDomain and UpstreamAuthAddress are the zone's, fixed at
	// the container's invocation (the staging seed).
	AllowOriginDomain   string
	UpstreamAuthAddress string
	// User is the on-demand session's user; nil for a staged container,
	// which learns its user when assigned.
	User *SessionUser
	// RunConfig is the workspace's run_config merged with the user's
	// effective group's.
	RunConfig containerconfig.RunConfig
	// Home is the workspace's home directory.
	Home string
	// Profile is the agent directory mounted at Home (a persistent
	// profile), or "".
	Profile string
	// Volumes are the volume mappings with their tokens substituted.
	Volumes []containerconfig.VolumeMapping
	// AuthorizedKeys, when set, becomes Home/.ssh/authorized_keys.
	AuthorizedKeys []byte
	// UserEnv are the user's exposed attributes (GREENROOM_USER_<KEY>).
	UserEnv map[string]string
	// WebFilter is the policy handed to the container, or nil.
	WebFilter *containerconfig.WebFilter
	// AssignSecret is a staged container's own secret, the bearer token
	// of its assign hook's request (GREENROOM_ASSIGN_SECRET); "" for an
	// on-demand one, which is never assigned.
	AssignSecret string
	// InternalAddress is the agent address the port is published on
	// (containerconfig.PublishAddress), never every interface.
	InternalAddress string
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
	// The run_config options (containerconfig.RunConfig).
	Hostname   string
	User       string
	WorkingDir string
	ShmSize    int64
	// CapAdd, CapDrop, SecurityOpt and PidsLimit are the hardening every
	// container gets unless its run_config says otherwise
	// (containerconfig.RunConfig.Capabilities, SecurityOptions and Pids):
	// CapDrop ALL with a small set added back, no-new-privileges, a pids
	// limit (-1: none).
	CapAdd      []string
	CapDrop     []string
	SecurityOpt []string
	PidsLimit   int64
	Devices     []containerconfig.Device
	DNS         []string
	ExtraHosts  []string
	// Binds are Docker binds, "host:container:rw|ro".
	Binds []string
	// Uploads are written into the created container before it starts:
	// the owners of mounted directories, the SSH keys.
	Uploads []Upload
}

// Upload is a tree of directories and files to write into a container at
// Dir (whose missing parents are made, owned by root).
type Upload struct {
	Dir     string
	Entries []UploadEntry
}

// UploadEntry is one directory (Content nil and Dir true) or file of an
// Upload, its Name relative to the Upload's Dir.
type UploadEntry struct {
	Name    string
	Dir     bool
	Mode    int64
	UID     int
	GID     int
	Content []byte
}

// BuildContainerSpec turns a session into its container. Greenroom's own
// variables (session id, PORT, the seven GREENROOM_ALLOW_*, the zone's
// domains, the user, the exposed attributes, the web filter) win over the
// run_config environment, so a workspace or group cannot misreport which
// session, user or permissions a container has; Greenroom's labels win
// over the run_config's and the operator's.
func BuildContainerSpec(s SessionContainer) ContainerSpec {
	labels := maps.Clone(s.RunConfig.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, s.ExtraLabels)
	labels[LabelManaged] = "true"
	labels[LabelSession] = s.SessionID
	labels[LabelWorkspace] = s.Workspace
	labels[LabelZone] = s.Zone
	labels[LabelAgent] = s.Agent
	if s.StagingConfigID != "" {
		labels[LabelStagingConfig] = s.StagingConfigID
	}
	labels[LabelAllowOriginDomain] = s.AllowOriginDomain
	labels[LabelUpstreamAuthAddress] = s.UpstreamAuthAddress
	for k, v := range PermissionEnv(s.Permissions) {
		labels["greenroom."+strings.ToLower(strings.TrimPrefix(k, "GREENROOM_"))] = v
	}

	env := maps.Clone(s.RunConfig.Environment)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, s.UserEnv)
	env[EnvSessionID] = s.SessionID
	env[EnvPort] = strconv.Itoa(s.Port)
	maps.Copy(env, PermissionEnv(s.Permissions))
	env[EnvAllowOriginDomain] = s.AllowOriginDomain
	env[EnvUpstreamAuthAddress] = s.UpstreamAuthAddress
	if s.User != nil {
		env[EnvUser] = s.User.Name
		env[EnvUserID] = s.User.ID
		labels[LabelUser] = s.User.Name
	}
	if s.WebFilter != nil {
		env[containerconfig.EnvWebFilter] = s.WebFilter.JSON()
	}
	if s.AssignSecret != "" {
		env[containerconfig.EnvAssignSecret] = s.AssignSecret
	}

	spec := ContainerSpec{
		Name:        ContainerName(s.SessionID),
		Image:       s.Image,
		Labels:      labels,
		Env:         envList(env),
		NanoCPUs:    s.Need.MilliCores * 1_000_000,
		MemoryBytes: s.Need.MemoryMB * 1024 * 1024,
		Port:        s.Port,
		HostIP:      s.InternalAddress,
		Hostname:    s.RunConfig.Hostname,
		User:        s.RunConfig.User,
		WorkingDir:  s.RunConfig.WorkingDir,
		ShmSize:     s.RunConfig.ShmSize,
		SecurityOpt: s.RunConfig.SecurityOptions(),
		PidsLimit:   s.RunConfig.Pids(),
		Devices:     s.RunConfig.Devices,
		DNS:         s.RunConfig.DNS,
		ExtraHosts:  s.RunConfig.ExtraHosts,
	}
	spec.CapAdd, spec.CapDrop = s.RunConfig.Capabilities()
	spec.Binds, spec.Uploads = mounts(s)
	return spec
}

// mounts are the binds of a session's persistent profile and volume
// mappings, and what must be written into the container before it starts:
// the owner of each directory that has one (the profile's is the home
// owner, Kasm's kasm-user), and the SSH keys. Read-only mounts cannot be
// written through, so they get no owner.
func mounts(s SessionContainer) ([]string, []Upload) {
	var binds []string
	var uploads []Upload
	home := path.Clean(s.Home)
	homeOwned := false
	if s.Profile != "" {
		binds = append(binds, s.Profile+":"+home+":rw")
		homeOwned = true
	}
	for _, v := range s.Volumes {
		mode := "rw"
		if v.ReadOnly {
			mode = "ro"
		}
		binds = append(binds, v.Host+":"+v.Bind+":"+mode)
		if v.Owned() && !v.ReadOnly {
			uploads = append(uploads, Upload{Dir: path.Dir(v.Bind), Entries: []UploadEntry{
				{Name: path.Base(v.Bind), Dir: true, Mode: 0o755, UID: *v.UID, GID: *v.GID},
			}})
		}
	}
	var homeEntries []UploadEntry
	if homeOwned || len(s.AuthorizedKeys) > 0 {
		homeEntries = append(homeEntries, UploadEntry{Name: path.Base(home), Dir: true, Mode: 0o755,
			UID: containerconfig.HomeOwner, GID: containerconfig.HomeOwner})
	}
	if len(s.AuthorizedKeys) > 0 {
		ssh := path.Join(path.Base(home), ".ssh")
		homeEntries = append(homeEntries,
			UploadEntry{Name: ssh, Dir: true, Mode: 0o700, UID: containerconfig.HomeOwner, GID: containerconfig.HomeOwner},
			UploadEntry{Name: path.Join(ssh, "authorized_keys"), Mode: 0o600, UID: containerconfig.HomeOwner,
				GID: containerconfig.HomeOwner, Content: s.AuthorizedKeys})
	}
	if len(homeEntries) > 0 {
		uploads = append(uploads, Upload{Dir: path.Dir(home), Entries: homeEntries})
	}
	return binds, uploads
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

// RequestHost is a zone's allow_origin_domain meaning "the host the user's
// request came in on".
const RequestHost = "$request_host$"

// GatewaySessionURL is the address a user opens a container session at:
// the gateway's, on the zone's allow_origin_domain when it names a domain
// (RequestHost keeps the gateway's own host), at /session/{id}/.
func GatewaySessionURL(gateway url.URL, allowOriginDomain, sessionID string) string {
	if allowOriginDomain != "" && allowOriginDomain != RequestHost {
		if port := gateway.Port(); port != "" {
			gateway.Host = net.JoinHostPort(allowOriginDomain, port)
		} else {
			gateway.Host = allowOriginDomain
		}
	}
	gateway.Path = "/session/" + sessionID + "/"
	gateway.RawQuery, gateway.Fragment = "", ""
	return gateway.String()
}

// SessionURL is a container's address at host: http://host:port/ (the
// gateway's upstream of the session).
func SessionURL(host string, hostPort int) string { return ContainerURL(host, hostPort, "/") }

// ContainerURL is path on a container's published port, as the
// provisioner reaches it (its assign hook, its readiness path).
func ContainerURL(host string, hostPort int, path string) string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(hostPort)) + path
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}
