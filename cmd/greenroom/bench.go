package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"
)

// benchCommandName is the benchmarks' own command. The CLI does not link
// the benchmarks: they link every service and an embedded nats-server.
const benchCommandName = "greenroom-bench"

const benchHelp = `Runs greenroom-bench, the benchmarks' own command, with the arguments given
(see 'greenroom-bench --help'): it measures Greenroom against the raw limits
it is bounded by and prints a Markdown table, the full results going to
bench/results/<timestamp>.json. It is looked up next to this executable, then
on PATH; 'make build' puts both in bin/, and 'make bench' runs it from the
source.

Its flags include --quick, --only SCENARIOS, --out DIR, --cpuprofile FILE and
--running (measure the deployment 'make up' started, with --api-url,
--nats-url, --database-url and --admin-token).`

// exitCodeError carries the exit code of a command the CLI ran, which has
// already said what went wrong.
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newBenchCommand(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:                "bench [greenroom-bench flags]",
		Short:              "Measure Greenroom against the raw limits it is bounded by (runs greenroom-bench)",
		Long:               benchHelp,
		Example:            "  greenroom bench --quick\n  greenroom bench --only handoff\n  greenroom bench --running --quick",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := findBenchCommand(getenv)
			if err != nil {
				if slices.Contains(args, "--help") || slices.Contains(args, "-h") {
					return cmd.Help()
				}
				return err
			}
			c := exec.CommandContext(cmd.Context(), path, args...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			err = c.Run()
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && ee.ExitCode() > 0 {
				return exitCodeError{ee.ExitCode()}
			}
			if err != nil {
				return fmt.Errorf("running %s: %w", path, err)
			}
			return nil
		},
	}
}

// findBenchCommand looks for greenroom-bench next to this executable, then
// on PATH (as getenv gives it).
func findBenchCommand(getenv func(string) string) (string, error) {
	var dirs []string
	if self, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	dirs = append(dirs, filepath.SplitList(getenv("PATH"))...)
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, benchCommandName)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is neither next to this executable nor on PATH: build it with 'make build' (bin/%s), or run the benchmarks with 'make bench'",
		benchCommandName, benchCommandName)
}
