package containerconfig

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// CheckSSHPublicKey says what is wrong with one line of authorized_keys,
// "" when nothing.
func CheckSSHPublicKey(key string) string {
	if strings.ContainsAny(key, "\r\n") {
		return "must be one line"
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key)); err != nil {
		return fmt.Sprintf("is not an SSH public key in authorized_keys format: %v", err)
	}
	return ""
}

// AuthorizedKeys is the content of ~/.ssh/authorized_keys for keys.
func AuthorizedKeys(keys []string) []byte {
	if len(keys) == 0 {
		return nil
	}
	return []byte(strings.Join(keys, "\n") + "\n")
}

// attributeKeyPattern keeps exposed attributes valid, unambiguous
// environment variable names.
var attributeKeyPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// UserEnvPrefix leads the variables an exposed attribute becomes.
const UserEnvPrefix = "GREENROOM_USER_"

// CheckAttributes lists the problems of a user's attributes: keys must be
// letters, digits and '_' (starting with a letter) and stay distinct once
// upper-cased, since each becomes GREENROOM_USER_<KEY>.
func CheckAttributes(attrs map[string]string) Errors {
	var errs Errors
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if !attributeKeyPattern.MatchString(k) {
			errs.add(k, "%q is not an attribute name: use letters, digits and '_', starting with a letter", k)
			continue
		}
		up := strings.ToUpper(k)
		if up == "ID" {
			errs.add(k, "would be %sID, which is the user's id", UserEnvPrefix)
			continue
		}
		if other, dup := seen[up]; dup {
			errs.add(k, "is the same variable as %q (%s%s)", other, UserEnvPrefix, up)
		}
		seen[up] = k
	}
	return errs
}

// UserEnv is the environment a user's exposed attributes give a
// container: GREENROOM_USER_<KEY>=value.
func UserEnv(attrs map[string]string) map[string]string {
	out := make(map[string]string, len(attrs))
	for k, v := range attrs {
		out[UserEnvPrefix+strings.ToUpper(k)] = v
	}
	return out
}

// WebFilter is a web filter policy as a container receives it, JSON in
// GREENROOM_WEB_FILTER. Enforcing it inside the desktop is the image's job,
// as in Kasm.
type WebFilter struct {
	Name           string   `json:"name"`
	DefaultAllow   bool     `json:"default_allow"`
	AllowedDomains []string `json:"allowed_domains"`
	DeniedDomains  []string `json:"denied_domains"`
}

// EnvWebFilter is the variable holding the policy.
const EnvWebFilter = "GREENROOM_WEB_FILTER"

// JSON is the policy as the container's variable holds it.
func (w WebFilter) JSON() string {
	if w.AllowedDomains == nil {
		w.AllowedDomains = []string{}
	}
	if w.DeniedDomains == nil {
		w.DeniedDomains = []string{}
	}
	b, _ := json.Marshal(w)
	return string(b)
}

// domainPattern is a DNS name, optionally led by "*." for its subdomains.
var domainPattern = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckDomain says what is wrong with a web filter domain, "" when
// nothing: a lower-case DNS name such as example.com or *.example.com.
func CheckDomain(d string) string {
	if len(d) > 253 || !domainPattern.MatchString(d) {
		return fmt.Sprintf("%q is not a domain such as example.com or *.example.com (lower case)", d)
	}
	return ""
}
