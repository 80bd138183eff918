package containerconfig

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// ReadinessPathMaxLength bounds a workspace's readiness_path.
const ReadinessPathMaxLength = 1024

// CheckReadinessPath says what is wrong with a workspace's readiness_path,
// "" when nothing. Empty means a TCP probe. Otherwise it is the target of
// an HTTP GET on the container's own published port, and it is appended to
// http://agent:port as it is, so it must be an HTTP path and nothing else:
// starting with one '/' (never "//host", "@host" or a scheme, which would
// send the probe, and the assign hook's warm-up request, elsewhere), an
// optional query, no fragment, no whitespace or control characters, and
// parsed by net/url as that same path.
func CheckReadinessPath(p string) string {
	switch {
	case p == "":
		return ""
	case len(p) > ReadinessPathMaxLength:
		return fmt.Sprintf("is longer than %d bytes", ReadinessPathMaxLength)
	case !utf8.ValidString(p):
		return "is not valid UTF-8"
	case strings.IndexFunc(p, isSpaceOrControl) >= 0:
		return fmt.Sprintf("%q holds whitespace or a control character (percent-encode it)", p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q is not an HTTP path: it must start with / (such as /healthz), without scheme or host", p)
	case strings.HasPrefix(p, "//"):
		return fmt.Sprintf("%q starts with // (a host, to a URL parser): write one /", p)
	case strings.Contains(p, "#"):
		return fmt.Sprintf("%q holds a fragment (#), which is never sent", p)
	}
	u, err := url.ParseRequestURI(p)
	if err != nil {
		return fmt.Sprintf("%q is not an HTTP path: %v", p, err)
	}
	if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.EscapedPath(), "/") {
		return fmt.Sprintf("%q is not an HTTP path: it must start with / (such as /healthz), without scheme or host", p)
	}
	return ""
}
