package domain

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// ExecConfig is a workspace's docker_exec_config (libs/containerconfig
// owns its meaning, so the config service refuses what the provisioner
// could not run): "assign" runs when a staged session is given to a user,
// "first_launch" once when a session first becomes its user's (after
// assign for a staged one, after the container answers for an on-demand
// one).
type ExecConfig = containerconfig.ExecConfig

// ExecCommand is one command of a docker_exec_config, as the admin wrote it.
type ExecCommand = containerconfig.ExecCommand

// ErrInvalidExecConfig wraps every problem with a docker_exec_config.
var ErrInvalidExecConfig = errors.New("invalid docker_exec_config")

// ParseExecConfig decodes a workspace's docker_exec_config. An empty value
// or one without "assign" means there is nothing to run on assignment.
func ParseExecConfig(raw []byte) (ExecConfig, error) {
	cfg, errs := containerconfig.ParseExecConfig(raw)
	if len(errs) > 0 {
		return ExecConfig{}, fmt.Errorf("%w: %v", ErrInvalidExecConfig, errs)
	}
	return cfg, nil
}

// Tokens are the values substituted for {username}, {user_id},
// {workspace} and {session_id} in an exec command.
type Tokens = containerconfig.Tokens

// ExecSpec is a command to run inside a container.
type ExecSpec struct {
	Cmd        []string
	User       string
	Privileged bool
	// Env is sorted KEY=VALUE pairs.
	Env     []string
	Workdir string
}

// RenderAssign is the exec to run when a staged session is given to a
// user, or false when the workspace has no assign command (see RenderExec).
func RenderAssign(cfg ExecConfig, t Tokens) (ExecSpec, bool) { return RenderExec(cfg.Assign, t) }

// RenderFirstLaunch is the exec to run once when a session first becomes
// its user's, or false when the workspace has no first_launch command.
func RenderFirstLaunch(cfg ExecConfig, t Tokens) (ExecSpec, bool) {
	return RenderExec(cfg.FirstLaunch, t)
}

// RenderExec is command a to run for a user, or false when a is nil.
// Tokens are substituted in each argument after the command line was
// split, so a user name holding spaces or quotes stays one argument and
// cannot add others. GREENROOM_USER, GREENROOM_USER_ID and
// GREENROOM_SESSION_ID are always set and win over the configured
// environment.
func RenderExec(a *ExecCommand, t Tokens) (ExecSpec, bool) {
	if a == nil {
		return ExecSpec{}, false
	}
	r := a.Render(t, map[string]string{EnvUser: t.Username, EnvUserID: t.UserID, EnvSessionID: t.SessionID})
	return ExecSpec{Cmd: r.Cmd, User: r.User, Privileged: r.Privileged, Env: envList(r.Environment), Workdir: r.Workdir}, true
}

// AssignDetail is what greenroom.session.assign_ran says of its step: s,
// the step's answer (the command's output, the hook's body) or why it
// failed, as one line (control characters, which the outbox's jsonb cannot
// hold, and runs of white space become one space), cut to its first
// events.AssignDetailMaxLength characters.
func AssignDetail(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(s); len(r) > events.AssignDetailMaxLength {
		s = string(r[:events.AssignDetailMaxLength-1]) + "…"
	}
	return s
}
