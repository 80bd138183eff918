package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"github.com/mattn/go-shellwords"

	"github.com/greenroom-dev/greenroom/libs/containerconfig"
)

// ExecConfig is a workspace's docker_exec_config: "assign" runs when a
// staged session is given to a user, "first_launch" once when a session
// first becomes its user's (after assign for a staged one, after the
// container answers for an on-demand one). Kasm's other keys are not
// accepted by the config service.
type ExecConfig struct {
	Assign      *ExecCommand
	FirstLaunch *ExecCommand
}

// ExecCommand is one command of a docker_exec_config, as the admin wrote it.
type ExecCommand struct {
	// Cmd is a string split like a shell would (quotes, no expansion), or
	// an array of arguments.
	Cmd         []string
	User        string
	Privileged  bool
	Environment map[string]string
	Workdir     string
}

// ErrInvalidExecConfig wraps every problem with a docker_exec_config.
var ErrInvalidExecConfig = errors.New("invalid docker_exec_config")

// ParseExecConfig decodes a workspace's docker_exec_config. An empty value
// or one without "assign" means there is nothing to run on assignment.
func ParseExecConfig(raw []byte) (ExecConfig, error) {
	if len(raw) == 0 {
		return ExecConfig{}, nil
	}
	var doc struct {
		Assign      *execDoc `json:"assign"`
		FirstLaunch *execDoc `json:"first_launch"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return ExecConfig{}, fmt.Errorf("%w: %v", ErrInvalidExecConfig, err)
	}
	var cfg ExecConfig
	var err error
	if cfg.Assign, err = doc.Assign.command("assign"); err != nil {
		return ExecConfig{}, err
	}
	if cfg.FirstLaunch, err = doc.FirstLaunch.command("first_launch"); err != nil {
		return ExecConfig{}, err
	}
	return cfg, nil
}

// execDoc is one command of a docker_exec_config as JSON.
type execDoc struct {
	Cmd         json.RawMessage `json:"cmd"`
	User        string          `json:"user"`
	Privileged  bool            `json:"privileged"`
	Environment map[string]any  `json:"environment"`
	Workdir     string          `json:"workdir"`
}

// command checks d (named key); nil when the key is absent.
func (d *execDoc) command(key string) (*ExecCommand, error) {
	if d == nil {
		return nil, nil
	}
	cmd, err := parseCmd(d.Cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %s.cmd: %v", ErrInvalidExecConfig, key, err)
	}
	env, err := scalarMap(key+".environment", d.Environment)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidExecConfig, err)
	}
	return &ExecCommand{Cmd: cmd, User: d.User, Privileged: d.Privileged, Environment: env, Workdir: d.Workdir}, nil
}

func parseCmd(raw json.RawMessage) ([]string, error) {
	var args []string
	var line string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, errors.New("missing")
	case json.Unmarshal(raw, &line) == nil:
		var err error
		args, err = shellwords.Parse(line)
		if err != nil {
			return nil, fmt.Errorf("splitting %q: %v", line, err)
		}
	case json.Unmarshal(raw, &args) == nil:
	default:
		return nil, fmt.Errorf("want a string or an array of strings, got %s", raw)
	}
	if len(args) == 0 || args[0] == "" {
		return nil, errors.New("empty")
	}
	return args, nil
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

// RenderExec is command a to run for a user, or false when a is nil. Tokens are
// substituted in each argument after the command line was split, so a user
// name holding spaces or quotes stays one argument and cannot add others.
// GREENROOM_USER, GREENROOM_USER_ID and GREENROOM_SESSION_ID are always set
// and win over the configured environment.
func RenderExec(a *ExecCommand, t Tokens) (ExecSpec, bool) {
	if a == nil {
		return ExecSpec{}, false
	}
	cmd := make([]string, len(a.Cmd))
	for i, arg := range a.Cmd {
		cmd[i] = t.Substitute(arg)
	}
	env := make(map[string]string, len(a.Environment)+3)
	for k, v := range a.Environment {
		env[k] = t.Substitute(v)
	}
	maps.Copy(env, map[string]string{EnvUser: t.Username, EnvUserID: t.UserID, EnvSessionID: t.SessionID})
	return ExecSpec{
		Cmd: cmd, User: a.User, Privileged: a.Privileged,
		Env: envList(env), Workdir: t.Substitute(a.Workdir),
	}, true
}
