package containerconfig

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mattn/go-shellwords"
)

// ExecCommand is one command of a workspace's docker_exec_config, run
// inside the session's container.
type ExecCommand struct {
	// Cmd is the argument list: a string is split as a shell would (quotes,
	// no expansion), an array is taken as it is.
	Cmd         []string
	User        string
	Privileged  bool
	Environment map[string]string
	Workdir     string
}

// ExecConfig is a workspace's docker_exec_config: Assign runs when a
// staged session is given to a user (rule 6), FirstLaunch once when a
// session first becomes its user's (after Assign for a staged one, once
// the container answers for an on-demand one).
type ExecConfig struct {
	Assign      *ExecCommand
	FirstLaunch *ExecCommand
}

// ExecConfigKeys are the docker_exec_config keys Greenroom runs.
var ExecConfigKeys = []string{"assign", "first_launch"}

// ParseExecConfig decodes and checks a docker_exec_config; empty, null and
// {} have no command, nor has a key whose value is null. A key Greenroom
// does not run is an error.
func ParseExecConfig(raw []byte) (ExecConfig, Errors) {
	var cfg ExecConfig
	obj, errs := object(raw)
	if len(errs) > 0 {
		return cfg, errs
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		var dst **ExecCommand
		switch k {
		case "assign":
			dst = &cfg.Assign
		case "first_launch":
			dst = &cfg.FirstLaunch
		default:
			errs.add(k, "is not a command Greenroom runs (it runs %s)", strings.Join(ExecConfigKeys, ", "))
			continue
		}
		if string(obj[k]) == "null" {
			continue
		}
		cmd, problems := parseExecCommand(k, obj[k])
		errs = append(errs, problems...)
		if len(problems) == 0 {
			*dst = &cmd
		}
	}
	return cfg, errs
}

func parseExecCommand(field string, raw json.RawMessage) (ExecCommand, Errors) {
	var c ExecCommand
	var errs Errors
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		errs.add(field, "must be an object")
		return c, errs
	}
	if _, ok := m["cmd"]; !ok {
		errs.add(field+".cmd", "is required")
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		path := field + "." + k
		v := m[k]
		switch k {
		case "cmd":
			c.Cmd = commandLine(&errs, path, v)
		case "user":
			c.User, _ = str(&errs, path, v)
		case "workdir":
			c.Workdir, _ = str(&errs, path, v)
		case "privileged":
			if err := json.Unmarshal(v, &c.Privileged); err != nil {
				errs.add(path, "must be a boolean")
			}
		case "environment":
			c.Environment = scalarMap(&errs, path, v, envNamePattern, "a variable name")
		default:
			errs.add(path, "is not a known field (cmd, user, privileged, environment, workdir)")
		}
	}
	return c, errs
}

// commandLine reads a shell command line or a non-empty argv.
func commandLine(errs *Errors, field string, raw json.RawMessage) []string {
	var line string
	var args []string
	switch {
	case json.Unmarshal(raw, &line) == nil:
		var err error
		if args, err = shellwords.Parse(line); err != nil {
			errs.add(field, "cannot be split into arguments: %v", err)
			return nil
		}
	case json.Unmarshal(raw, &args) == nil:
	default:
		errs.add(field, "must be a string or an array of strings")
		return nil
	}
	if len(args) == 0 || args[0] == "" {
		errs.add(field, "must not be empty")
		return nil
	}
	return args
}

// Render is c for one session: the tokens are substituted in each
// argument after the command line was split, so a user name holding spaces
// or quotes stays one argument and cannot add others. env, Greenroom's own
// variables, win over the configured environment.
func (c ExecCommand) Render(t Tokens, env map[string]string) ExecCommand {
	out := ExecCommand{User: c.User, Privileged: c.Privileged, Workdir: t.Substitute(c.Workdir)}
	out.Cmd = make([]string, len(c.Cmd))
	for i, a := range c.Cmd {
		out.Cmd[i] = t.Substitute(a)
	}
	out.Environment = make(map[string]string, len(c.Environment)+len(env))
	for k, v := range c.Environment {
		out.Environment[k] = t.Substitute(v)
	}
	maps.Copy(out.Environment, env)
	return out
}

// String is the command line, for messages.
func (c ExecCommand) String() string { return fmt.Sprintf("%q", c.Cmd) }
