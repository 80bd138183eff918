// Command greenroom is the operator CLI of Greenroom: it migrates the
// database, requests sessions over NATS, lists sessions and pools through
// the admin API, applies, shows and deletes configuration resources
// (apply, get, delete), replays the audit log from JetStream and loads the
// demo configuration. Run `greenroom --help` for the list of commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (request failed, API error, ...)
	exitUsage   = 2 // bad command line
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return runWithStdin(ctx, args, os.Stdin, stdout, stderr, getenv)
}

// runWithStdin is run with stdin as the standard input (`apply -f -`).
func runWithStdin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	root := newRootCommand(getenv)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if ec := (exitCodeError{}); errors.As(err, &ec) {
		return ec.code // the command it ran has said why
	}
	fmt.Fprintf(stderr, "greenroom: %s\n", strings.TrimSpace(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitFailure
}

// usageError is a mistake in the command line rather than a failure of the
// command.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() + " (see --help)" }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }
