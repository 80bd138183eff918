// Package containerconfig owns what a session's container is launched with
// beyond its image: a workspace's and a group's run_config (the Docker
// create options Greenroom honours), volume mappings in Kasm's format, the
// persistent profile path, the tokens substituted in them, a user's SSH
// keys and exposed attributes, and the web filter policy handed to the
// container. The config service validates with it (so a bad value is a
// 400 naming the key) and the provisioner applies it, so the two can never
// disagree on what a setting means.
package containerconfig

import (
	"fmt"
	"path"
	"strings"
)

// Error is one problem with one key of a setting; Field is a dotted path
// below the setting ("environment.FOO", "/srv/{username}.bind").
type Error struct {
	Field  string
	Detail string
}

// Errors lists a setting's problems, in a stable order.
type Errors []Error

func (e *Errors) add(field, format string, args ...any) {
	*e = append(*e, Error{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, p := range e {
		parts[i] = p.Field + ": " + p.Detail
	}
	return strings.Join(parts, "; ")
}

// Err returns e as an error, nil when it is empty.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// Tokens are the values substituted for {username}, {user_id},
// {workspace} and {session_id} in paths and commands.
type Tokens struct {
	Username  string
	UserID    string
	Workspace string
	SessionID string
}

// Substitute replaces the tokens in s.
func (t Tokens) Substitute(s string) string {
	return strings.NewReplacer("{username}", t.Username, "{user_id}", t.UserID,
		"{workspace}", t.Workspace, "{session_id}", t.SessionID).Replace(s)
}

// UserTokens are the tokens that make a value per user: a volume mapping
// that uses one cannot be applied to a staged container (rule 4).
var UserTokens = []string{"{username}", "{user_id}"}

// UsesUserToken reports whether s holds {username} or {user_id}.
func UsesUserToken(s string) bool {
	for _, t := range UserTokens {
		if strings.Contains(s, t) {
			return true
		}
	}
	return false
}

// sampleTokens stand in for real values when a template is checked: a
// username is a name (no '/'), an id a UUID, so a path that is absolute
// and clean with these stays so with any real user.
var sampleTokens = Tokens{Username: "user", UserID: "00000000-0000-0000-0000-000000000000",
	Workspace: "workspace", SessionID: "00000000-0000-0000-0000-000000000001"}

// CheckPath says what is wrong with p as an absolute path, "" when
// nothing: it must start with '/', be clean (no "..", ".", "//" or
// trailing '/') and, unless root is allowed, not be "/" itself.
func CheckPath(p string, rootAllowed bool) string {
	switch {
	case p == "":
		return "must not be empty"
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q is not an absolute path", p)
	case path.Clean(p) != p:
		return fmt.Sprintf("%q is not a clean path (write %q)", p, path.Clean(p))
	case p == "/" && !rootAllowed:
		return "must not be /"
	case strings.ContainsAny(p, ":\x00"):
		return fmt.Sprintf("%q holds ':' or a NUL byte", p)
	}
	return ""
}

// CheckTemplatePath is CheckPath for a path holding tokens, after
// substituting sample values.
func CheckTemplatePath(p string, rootAllowed bool) string {
	if p == "" {
		return CheckPath(p, rootAllowed)
	}
	return CheckPath(sampleTokens.Substitute(p), rootAllowed)
}

// HomeDirectoryDefault is a workspace's home directory unless told: Kasm's
// images run as kasm-user with this home.
const HomeDirectoryDefault = "/home/kasm-user"

// HomeOwner is the uid and gid that own a session's home directory when
// Greenroom creates it (a persistent profile, ~/.ssh): Kasm's kasm-user.
const HomeOwner = 1000

// CheckProfilePath says what is wrong with a persistent_profile_path
// template, "" when nothing: absolute and clean after substitution, and
// per user ({user_id}, or {username}), since a profile one user writes must
// not be another user's.
func CheckProfilePath(template string) string {
	if problem := CheckTemplatePath(template, false); problem != "" {
		return problem
	}
	if !UsesUserToken(template) {
		return "must contain {user_id} or {username}: a profile is one user's"
	}
	return ""
}

// ProfilePath is the agent directory of a user's persistent profile: the
// workspace's persistent_profile_path with its tokens substituted, checked
// again after substitution.
func ProfilePath(template string, t Tokens) (string, error) {
	p := t.Substitute(template)
	if problem := CheckPath(p, false); problem != "" {
		return "", fmt.Errorf("persistent_profile_path: %s", problem)
	}
	return p, nil
}
