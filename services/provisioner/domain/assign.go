package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/mattn/go-shellwords"
)

// ExecConfig is a workspace's docker_exec_config. Only "assign" is used by
// Greenroom; Kasm's other keys (first_launch, go, …) are ignored.
type ExecConfig struct {
	Assign *ExecCommand
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
		Assign *struct {
			Cmd         json.RawMessage `json:"cmd"`
			User        string          `json:"user"`
			Privileged  bool            `json:"privileged"`
			Environment map[string]any  `json:"environment"`
			Workdir     string          `json:"workdir"`
		} `json:"assign"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return ExecConfig{}, fmt.Errorf("%w: %v", ErrInvalidExecConfig, err)
	}
	if doc.Assign == nil {
		return ExecConfig{}, nil
	}
	cmd, err := parseCmd(doc.Assign.Cmd)
	if err != nil {
		return ExecConfig{}, fmt.Errorf("%w: assign.cmd: %v", ErrInvalidExecConfig, err)
	}
	env, err := scalarMap("assign.environment", doc.Assign.Environment)
	if err != nil {
		return ExecConfig{}, fmt.Errorf("%w: %v", ErrInvalidExecConfig, err)
	}
	return ExecConfig{Assign: &ExecCommand{
		Cmd: cmd, User: doc.Assign.User, Privileged: doc.Assign.Privileged,
		Environment: env, Workdir: doc.Assign.Workdir,
	}}, nil
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

// Tokens are the values substituted for {username}, {user_id} and
// {session_id} in an exec command.
type Tokens struct {
	Username  string
	UserID    string
	SessionID string
}

// Substitute replaces the tokens in s.
func (t Tokens) Substitute(s string) string {
	return strings.NewReplacer("{username}", t.Username, "{user_id}", t.UserID, "{session_id}", t.SessionID).Replace(s)
}

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
// user, or false when the workspace has no assign command. Tokens are
// substituted in each argument after the command line was split, so a user
// name holding spaces or quotes stays one argument and cannot add others.
// GREENROOM_USER, GREENROOM_USER_ID and GREENROOM_SESSION_ID are always set
// and win over the configured environment.
func RenderAssign(cfg ExecConfig, t Tokens) (ExecSpec, bool) {
	a := cfg.Assign
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
