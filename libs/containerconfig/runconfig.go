package containerconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
)

// RunConfig is the part of Kasm's run_config (docker run options) that
// Greenroom applies when it creates a session's container. Keys are the
// docker-py names Kasm's documentation uses. A key outside RunConfigKeys
// is an error, never silently dropped.
type RunConfig struct {
	Hostname string
	// Environment is added to the container's environment; Greenroom's
	// own GREENROOM_* session variables win over it.
	Environment map[string]string
	// ShmSize is /dev/shm in bytes; 0 leaves Docker's default.
	ShmSize    int64
	CapAdd     []string
	CapDrop    []string
	Devices    []Device
	DNS        []string
	ExtraHosts []string // "host:ip", as Docker takes them
	// Labels are added to the container's labels; greenroom.* is
	// Greenroom's own and refused.
	Labels     map[string]string
	User       string
	WorkingDir string
	// SecurityOpt are Docker security options (security_opt); the
	// container gets SecurityOptions(), which adds no-new-privileges
	// unless one of these sets it.
	SecurityOpt []string
	// PidsLimit is pids_limit: nil leaves Greenroom's default
	// (PidsLimitDefault), -1 is no limit.
	PidsLimit *int64
}

// Device is a host device made available in the container.
type Device struct {
	PathOnHost        string
	PathInContainer   string
	CgroupPermissions string
}

// RunConfigKeys are the run_config keys Greenroom applies.
var RunConfigKeys = []string{"cap_add", "cap_drop", "devices", "dns", "environment", "extra_hosts",
	"hostname", "labels", "pids_limit", "security_opt", "shm_size", "user", "working_dir"}

// mapKeys are the keys whose values are objects merged entry by entry.
var mapKeys = []string{"environment", "labels", "extra_hosts"}

var (
	hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	envNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

// ParseRunConfig decodes and checks a run_config object. Empty input, null
// and {} are an empty RunConfig.
func ParseRunConfig(raw []byte) (RunConfig, Errors) {
	var rc RunConfig
	obj, errs := object(raw)
	if len(errs) > 0 {
		return rc, errs
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		switch k {
		case "hostname":
			if s, ok := str(&errs, k, v); ok {
				if len(s) > 253 || !hostnamePattern.MatchString(s) {
					errs.add(k, "%q is not a host name", s)
				}
				rc.Hostname = s
			}
		case "environment":
			rc.Environment = scalarMap(&errs, k, v, envNamePattern, "a variable name")
			for _, name := range slices.Sorted(maps.Keys(rc.Environment)) {
				if ReservedEnv(name) {
					errs.add(k+"."+name, "is Greenroom's own: it says which session, user, permissions and policy a container has")
				}
			}
		case "shm_size":
			rc.ShmSize = size(&errs, k, v)
		case "cap_add":
			rc.CapAdd = strList(&errs, k, v, checkCapability)
		case "cap_drop":
			rc.CapDrop = strList(&errs, k, v, checkCapability)
		case "devices":
			for i, s := range strList(&errs, k, v, nil) {
				d, problem := parseDevice(s)
				if problem != "" {
					errs.add(fmt.Sprintf("%s[%d]", k, i), "%s", problem)
					continue
				}
				rc.Devices = append(rc.Devices, d)
			}
		case "dns":
			rc.DNS = strList(&errs, k, v, func(s string) string {
				if net.ParseIP(s) == nil {
					return fmt.Sprintf("%q is not an IP address", s)
				}
				return ""
			})
		case "extra_hosts":
			rc.ExtraHosts = extraHosts(&errs, k, v)
		case "labels":
			rc.Labels = scalarMap(&errs, k, v, nil, "")
			for _, l := range slices.Sorted(maps.Keys(rc.Labels)) {
				if strings.HasPrefix(l, "greenroom.") {
					errs.add(k+"."+l, "labels under greenroom. are Greenroom's own")
				}
			}
		case "security_opt":
			rc.SecurityOpt = strList(&errs, k, v, checkSecurityOpt)
		case "pids_limit":
			rc.PidsLimit = pidsLimit(&errs, k, v)
		case "user":
			if s, ok := str(&errs, k, v); ok {
				if s == "" {
					errs.add(k, "must not be empty")
				}
				rc.User = s
			}
		case "working_dir":
			if s, ok := str(&errs, k, v); ok {
				if problem := CheckPath(s, true); problem != "" {
					errs.add(k, "%s", problem)
				}
				rc.WorkingDir = s
			}
		default:
			errs.add(k, "is not a run_config option Greenroom applies (it applies %s)", strings.Join(RunConfigKeys, ", "))
		}
	}
	return rc, errs
}

// MergeRunConfig merges a workspace's run_config with the user's effective
// group's: the group wins per key, and for the object-valued keys
// (environment, labels, extra_hosts given as an object) per entry.
func MergeRunConfig(workspace, group []byte) ([]byte, Errors) {
	ws, errs := object(workspace)
	g, gerrs := object(group)
	if errs = append(errs, gerrs...); len(errs) > 0 {
		return nil, errs
	}
	out := maps.Clone(ws)
	if out == nil {
		out = map[string]json.RawMessage{}
	}
	for k, v := range g {
		if base, ok := out[k]; ok && slices.Contains(mapKeys, k) {
			var a, b map[string]json.RawMessage
			if json.Unmarshal(base, &a) == nil && json.Unmarshal(v, &b) == nil && a != nil && b != nil {
				maps.Copy(a, b)
				merged, err := json.Marshal(a)
				if err == nil {
					out[k] = merged
					continue
				}
			}
		}
		out[k] = v
	}
	merged, err := json.Marshal(out)
	if err != nil {
		return nil, Errors{{Field: "", Detail: err.Error()}}
	}
	return merged, nil
}

// object decodes a JSON object; empty, null and {} are nil.
func object(raw []byte) (map[string]json.RawMessage, Errors) {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 || string(s) == "null" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(s, &obj); err != nil {
		return nil, Errors{{Field: "", Detail: "must be a JSON object"}}
	}
	return obj, nil
}

func str(errs *Errors, field string, v json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		errs.add(field, "must be a string")
		return "", false
	}
	return s, true
}

// strList reads an array of strings (a single string counts as one), each
// checked by check.
func strList(errs *Errors, field string, v json.RawMessage, check func(string) string) []string {
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		var one string
		if json.Unmarshal(v, &one) != nil {
			errs.add(field, "must be an array of strings")
			return nil
		}
		list = []string{one}
	}
	for i, s := range list {
		if check != nil {
			if problem := check(s); problem != "" {
				errs.add(fmt.Sprintf("%s[%d]", field, i), "%s", problem)
			}
		}
	}
	return list
}

// scalarMap reads an object of strings, numbers and booleans as strings.
func scalarMap(errs *Errors, field string, v json.RawMessage, keyPattern *regexp.Regexp, keyWhat string) map[string]string {
	var m map[string]any
	if err := json.Unmarshal(v, &m); err != nil || m == nil {
		errs.add(field, "must be an object")
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		path := field + "." + k
		if k == "" || (keyPattern != nil && !keyPattern.MatchString(k)) {
			what := keyWhat
			if what == "" {
				what = "a key"
			}
			errs.add(path, "%q is not %s", k, what)
			continue
		}
		switch x := m[k].(type) {
		case string:
			out[k] = x
		case bool:
			out[k] = strconv.FormatBool(x)
		case float64:
			out[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case nil:
			out[k] = ""
		default:
			errs.add(path, "must be a string, number or boolean")
		}
	}
	return out
}

// size reads a byte count: an integer, or a string such as "512m" or "1g".
func size(errs *Errors, field string, v json.RawMessage) int64 {
	var n int64
	if json.Unmarshal(v, &n) == nil {
		if n <= 0 {
			errs.add(field, "must be greater than 0")
		}
		return n
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		errs.add(field, "must be a number of bytes or a size such as \"512m\"")
		return 0
	}
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		errs.add(field, "%q is not a size such as \"512m\" or \"1g\"", s)
		return 0
	}
	return n
}

// parseDevice reads Docker's "/dev/host[:/dev/in-container[:rwm]]".
func parseDevice(s string) (Device, string) {
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return Device{}, fmt.Sprintf("%q is not /dev/host[:/dev/container[:permissions]]", s)
	}
	d := Device{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	if len(parts) > 1 && parts[1] != "" {
		d.PathInContainer = parts[1]
	}
	if len(parts) == 3 {
		d.CgroupPermissions = parts[2]
	}
	for _, p := range []string{d.PathOnHost, d.PathInContainer} {
		if problem := CheckPath(p, false); problem != "" {
			return Device{}, problem
		}
	}
	if d.CgroupPermissions == "" || strings.Trim(d.CgroupPermissions, "rwm") != "" {
		return Device{}, fmt.Sprintf("permissions %q are not a combination of r, w and m", d.CgroupPermissions)
	}
	return d, ""
}

// extraHosts reads {"host": "ip"} or ["host:ip"] as Docker's "host:ip".
func extraHosts(errs *Errors, field string, v json.RawMessage) []string {
	check := func(path, host, ip string) bool {
		if !hostnamePattern.MatchString(host) {
			errs.add(path, "%q is not a host name", host)
			return false
		}
		if ip != "host-gateway" && net.ParseIP(ip) == nil {
			errs.add(path, "%q is not an IP address (or host-gateway)", ip)
			return false
		}
		return true
	}
	var m map[string]string
	if json.Unmarshal(v, &m) == nil && m != nil {
		var out []string
		for _, h := range slices.Sorted(maps.Keys(m)) {
			if check(field+"."+h, h, m[h]) {
				out = append(out, h+":"+m[h])
			}
		}
		return out
	}
	var out []string
	for i, e := range strList(errs, field, v, nil) {
		host, ip, ok := strings.Cut(e, ":")
		path := fmt.Sprintf("%s[%d]", field, i)
		if !ok {
			errs.add(path, "%q is not host:ip", e)
			continue
		}
		if check(path, host, ip) {
			out = append(out, e)
		}
	}
	return out
}

// capabilities are the Linux capabilities Docker accepts (capabilities(7)),
// without their CAP_ prefix.
var capabilities = []string{"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
	"LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST",
	"NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT",
	"SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME",
	"SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM"}

func checkCapability(s string) string {
	if s == "ALL" || slices.Contains(capabilities, strings.TrimPrefix(s, "CAP_")) {
		return ""
	}
	return fmt.Sprintf("%q is not a Linux capability such as NET_ADMIN (or ALL)", s)
}

// ReservedEnv reports whether name is one of the variables Greenroom sets
// itself to tell a container its session: GREENROOM_SESSION_ID,
// GREENROOM_USER, GREENROOM_USER_ID and GREENROOM_USER_<KEY>, the
// GREENROOM_ALLOW_* permissions and domains, GREENROOM_UPSTREAM_AUTH_ADDRESS,
// GREENROOM_WEB_FILTER and GREENROOM_ASSIGN_SECRET. No run_config may set them, so that no
// workspace or group can make a container misreport who it is for.
func ReservedEnv(name string) bool {
	switch name {
	case "GREENROOM_SESSION_ID", "GREENROOM_USER", EnvWebFilter, "GREENROOM_UPSTREAM_AUTH_ADDRESS", EnvAssignSecret:
		return true
	}
	return strings.HasPrefix(name, UserEnvPrefix) || strings.HasPrefix(name, "GREENROOM_ALLOW_")
}
