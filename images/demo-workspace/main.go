// Command demo-workspace is the container image Greenroom stages in its demo
// and end-to-end tests. It stands in for "an image with a lengthy run-time
// initialisation routine": the server only opens its port after a configurable
// delay, so the provisioner's readiness probe has something real to wait for.
// A staged session is handed to a user either by the HTTP assign hook
// (POST /.greenroom/assign, authenticated by GREENROOM_ASSIGN_SECRET) or by
// the "assign" subcommand run as the Docker exec hook; the page then shows
// the user.
//
// The binary is static and the image is FROM scratch, so it must not rely on a
// shell, /tmp, or any file that the image does not create itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `demo-workspace: Greenroom demo workspace image.

Usage:
  demo-workspace [serve]                       wait GREENROOM_DEMO_INIT_DELAY, then serve HTTP on :$PORT
  demo-workspace assign --user NAME [--user-id ID]
                                               record the assigned user (Docker exec "assign" hook)
  demo-workspace file read|write|append|stat PATH [TEXT]
                                               what the process sees of a file (tests)
  demo-workspace env                           print the GREENROOM_* environment, uid and host name
  demo-workspace help                          show this help

serve answers GET / (HTML page), GET /healthz ("ok"), GET /api/state (JSON) and
POST /.greenroom/assign, the HTTP assign hook: with "Authorization: Bearer
$GREENROOM_ASSIGN_SECRET" and a JSON body {"session_id", "user", "user_id",
"permissions", "environment"} (at most 64 KiB, unknown fields ignored) it
records the user as assign does and answers 200 {"assigned": true}. Otherwise:
404 when GREENROOM_ASSIGN_SECRET is not set (the hook is off), 401 for a
missing or wrong bearer token, 400 for a body that is not JSON or has no user,
409 when session_id is not this container's GREENROOM_SESSION_ID, 413 for a
body over 64 KiB.

Environment:
  PORT                       port to listen on (default 8080)
  GREENROOM_DEMO_INIT_DELAY  initialisation delay before the port opens, a Go
                             duration such as 3s or 500ms (default 3s)
  GREENROOM_DEMO_STATE       state file path (default /dev/shm/greenroom-demo/state.json)
  GREENROOM_SESSION_ID       session id shown on the page (may be empty)
  GREENROOM_USER             the session's user: set from creation for an on-demand
                             session (the page shows it); for assign when --user is not given
  GREENROOM_USER_ID          user id, likewise
  GREENROOM_WEB_FILTER       the web filter policy (JSON), shown on the page; enforcing
                             it is the image's job (this demo only shows it)
  GREENROOM_ASSIGN_SECRET    bearer token of the HTTP assign hook, set by Greenroom per
                             container; unset turns the hook off. Read once at start,
                             never logged (env prints only that it is set)
`

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	// PID 1 in a container ignores SIGTERM and SIGINT unless it installs
	// handlers, and docker stop would then wait for its SIGKILL timeout.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program behind main, with its inputs passed in so tests can
// drive it without touching the process environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}

	var err error
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "serve":
		err = runServe(ctx, args, getenv, stderr)
	case "assign":
		err = runAssign(args, getenv, stdout, stderr)
	case "file":
		err = runFile(args, stdout)
	case "env":
		err = runEnv(os.Environ(), stdout)
	default:
		fmt.Fprintf(stderr, "demo-workspace: unknown subcommand %q\n\n%s", cmd, usage)
		return exitUsage
	}

	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, errFlags):
		return exitUsage // the flag package has already printed the problem
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "demo-workspace %s: %v\n", cmd, err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "demo-workspace %s: %v\n", cmd, err)
		return exitError
	}
}

// errHelp reports that a subcommand printed its own help on request;
// errFlags that the flag package has already reported bad flags.
var (
	errHelp  = errors.New("help requested")
	errFlags = errors.New("bad flags")
)

// usageError marks errors in how a subcommand was invoked (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// newFlagSet returns a flag set for one subcommand that reports to stderr
// instead of exiting, so run decides the exit status.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("demo-workspace "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: demo-workspace %s\n", synopsis)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\nRun 'demo-workspace help' for the environment variables.\n")
	}
	return fs
}

// parseFlags parses args into fs and rejects positional arguments, which no
// subcommand takes.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return errFlags
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// getenvDefault returns the variable's value, or def when it is unset or empty.
func getenvDefault(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
