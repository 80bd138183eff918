package containerconfig

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AssignHook is a workspace's assign_hook: on assignment the provisioner
// POSTs the assignment as JSON to Path on the container's port, with the
// container's own secret, and a 2xx answer within Timeout means ready.
// When a workspace declares it, its docker_exec_config "assign" is not run.
type AssignHook struct {
	Path    string
	Timeout time.Duration
}

// Assign hook bounds.
const (
	AssignHookTimeoutDefault = 5 * time.Second
	AssignHookTimeoutMax     = time.Minute
)

// EnvAssignSecret is the variable holding a staged container's secret: the
// bearer token of the assign hook's request, which the container checks.
const EnvAssignSecret = "GREENROOM_ASSIGN_SECRET"

// ParseAssignHook decodes and checks an assign_hook; empty and null are
// none (false).
func ParseAssignHook(raw []byte) (AssignHook, bool, Errors) {
	h := AssignHook{Timeout: AssignHookTimeoutDefault}
	obj, errs := object(raw)
	if len(errs) > 0 || obj == nil {
		return h, false, errs
	}
	if _, ok := obj["path"]; !ok {
		errs.add("path", "is required")
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch k {
		case "path":
			if s, ok := str(&errs, k, obj[k]); ok {
				if problem := CheckPath(s, false); problem != "" || strings.ContainsAny(s, "?#") || len(s) > 200 || !urlPath(s) {
					errs.add(k, "%q is not an absolute, clean URL path such as /.greenroom/assign", s)
				}
				h.Path = s
			}
		case "timeout":
			if s, ok := str(&errs, k, obj[k]); ok {
				d, err := time.ParseDuration(s)
				if err != nil || d < time.Millisecond || d > AssignHookTimeoutMax {
					errs.add(k, "must be a duration from 1ms to %s, such as 5s", AssignHookTimeoutMax)
				}
				h.Timeout = d
			}
		default:
			errs.add(k, "is not a known field (path, timeout)")
		}
	}
	return h, len(errs) == 0, errs
}

// urlPath reports whether s makes a URL the provisioner can request, as
// written: no control character or space, no malformed %-escape.
func urlPath(s string) bool {
	if strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return false
	}
	u, err := url.Parse("http://127.0.0.1" + s)
	return err == nil && u.EscapedPath() == s
}

// AssignRequest is the body of the assign hook's POST.
type AssignRequest struct {
	SessionID string `json:"session_id"`
	User      string `json:"user"`
	UserID    string `json:"user_id"`
	// Permissions are the seven allow_* the container was started with,
	// as the session stores them.
	Permissions json.RawMessage   `json:"permissions"`
	Environment map[string]string `json:"environment"`
}

// JSON is the request body.
func (r AssignRequest) JSON() []byte {
	if r.Environment == nil {
		r.Environment = map[string]string{}
	}
	b, _ := json.Marshal(r)
	return b
}
