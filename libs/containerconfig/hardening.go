package containerconfig

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// What every session container gets unless its run_config says otherwise
// (docs/operations.md, "Containers are hardened by default"):
//
//   - no-new-privileges: no process in it gains privileges through a
//     setuid or setgid binary or file capabilities (execs included);
//   - every capability dropped, and DefaultCapabilities added back;
//   - at most PidsLimitDefault processes and threads.
const (
	// NoNewPrivileges is the security option Greenroom adds. Docker takes
	// "no-new-privileges:true" too, but logs a deprecation warning for the
	// ':' separator on every container it starts.
	NoNewPrivileges = "no-new-privileges=true"
	// PidsLimitDefault bounds the tasks (processes and threads) of a
	// container, so that a fork bomb in one session cannot exhaust the
	// agent's process table. A browser runs some tens of threads per
	// process and a process per site; 2048 leaves room for a desktop with
	// a browser of many tabs.
	PidsLimitDefault int64 = 2048
	// pidsUnlimited is the pids_limit that lifts the limit.
	pidsUnlimited int64 = -1
)

// DefaultCapabilities are the capabilities a session container keeps
// unless its run_config adds or drops some: Docker's default set without
// NET_RAW (raw sockets: forging packets, ARP or DNS spoofing, towards the
// other containers on the agent's bridge; ping works without it through
// ICMP datagram sockets, which Docker allows in containers since 20.10),
// MKNOD (device nodes, which no desktop makes) and SETFCAP (giving files
// capabilities that a later exec would gain). What is left is what images
// that start as root and drop to a user need: change owners and modes,
// switch user and group (su, gosu, s6, supervisord), signal their own
// processes, bind ports below 1024, chroot (browser sandboxes) and write
// the audit log (login, sudo).
var DefaultCapabilities = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
	"NET_BIND_SERVICE", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

// capAll is "every capability" in cap_add and cap_drop.
const capAll = "ALL"

// Capabilities are the Docker CapAdd and CapDrop of a container with this
// run_config. The container starts from DefaultCapabilities: cap_drop
// removes from them (ALL removes them all) and cap_add adds to them, so the
// result is sent as CapDrop ALL and CapAdd the capabilities kept. cap_add
// ALL keeps every capability but those named in cap_drop, as Docker does.
// Names are without their CAP_ prefix.
func (rc RunConfig) Capabilities() (add, drop []string) {
	norm := func(list []string) []string {
		out := make([]string, 0, len(list))
		for _, c := range list {
			out = append(out, strings.TrimPrefix(c, "CAP_"))
		}
		return out
	}
	capAdd, capDrop := norm(rc.CapAdd), norm(rc.CapDrop)
	if slices.Contains(capAdd, capAll) {
		drop = slices.DeleteFunc(slices.Clone(capDrop), func(c string) bool { return c == capAll })
		slices.Sort(drop)
		return []string{capAll}, slices.Compact(drop)
	}
	kept := map[string]bool{}
	if !slices.Contains(capDrop, capAll) {
		for _, c := range DefaultCapabilities {
			kept[c] = true
		}
		for _, c := range capDrop {
			delete(kept, c)
		}
	}
	for _, c := range capAdd {
		kept[c] = true
	}
	return slices.Sorted(maps.Keys(kept)), []string{capAll}
}

// SecurityOptions are the Docker security options of a container with
// this run_config: its security_opt, with NoNewPrivileges first unless one
// of them sets no-new-privileges (to false, say).
func (rc RunConfig) SecurityOptions() []string {
	for _, o := range rc.SecurityOpt {
		if k, _ := securityOptKey(o); k == "no-new-privileges" {
			return slices.Clone(rc.SecurityOpt)
		}
	}
	return append([]string{NoNewPrivileges}, rc.SecurityOpt...)
}

// Pids is the Docker PidsLimit of a container with this run_config:
// pids_limit, PidsLimitDefault when it has none, -1 for no limit.
func (rc RunConfig) Pids() int64 {
	if rc.PidsLimit == nil {
		return PidsLimitDefault
	}
	return *rc.PidsLimit
}

// securityOptKey splits a security option as Docker does: "key=value",
// the deprecated "key:value", or a bare key.
func securityOptKey(o string) (key, value string) {
	if k, v, ok := strings.Cut(o, "="); ok {
		return k, v
	}
	if k, v, ok := strings.Cut(o, ":"); ok {
		return k, v
	}
	return o, ""
}

// checkSecurityOpt accepts the security options every Docker Engine
// Greenroom supports (API 1.41 and later) applies: no-new-privileges[=bool],
// apparmor=<profile>, seccomp=unconfined or an inline JSON profile, and
// SELinux's label=disable or label=user|role|type|level:<value>.
func checkSecurityOpt(o string) string {
	k, v := securityOptKey(o)
	if o == "no-new-privileges" {
		return ""
	}
	bad := func(what string) string { return fmt.Sprintf("%q: %s", o, what) }
	if k == o {
		return bad("is not a security option such as no-new-privileges=false, apparmor=PROFILE, seccomp=unconfined or label=disable")
	}
	switch k {
	case "no-new-privileges":
		if _, err := strconv.ParseBool(v); err != nil {
			return bad("no-new-privileges takes true or false")
		}
	case "apparmor":
		if v == "" || strings.IndexFunc(v, isSpaceOrControl) >= 0 {
			return bad("apparmor takes a profile name")
		}
	case "seccomp":
		if v != "unconfined" && !(strings.HasPrefix(strings.TrimSpace(v), "{") && json.Valid([]byte(v))) {
			return bad("seccomp takes unconfined or a JSON profile (its content: the engine never reads a file named here)")
		}
	case "label":
		lk, lv, ok := strings.Cut(v, ":")
		switch {
		case v == "disable":
		case ok && slices.Contains([]string{"user", "role", "type", "level"}, lk) && lv != "" && strings.IndexFunc(lv, isSpaceOrControl) < 0:
		default:
			return bad("label takes disable or user:, role:, type: or level: and a value")
		}
	default:
		return bad("is not a security option such as no-new-privileges=false, apparmor=PROFILE, seccomp=unconfined or label=disable")
	}
	return ""
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// pidsLimit reads pids_limit: a whole number of tasks from 1, or -1 for no
// limit.
func pidsLimit(errs *Errors, field string, v json.RawMessage) *int64 {
	var n int64
	if err := json.Unmarshal(v, &n); err != nil || (n < 1 && n != pidsUnlimited) {
		errs.add(field, "must be a whole number of processes from 1, or -1 for no limit")
		return nil
	}
	return &n
}
