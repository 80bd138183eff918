// Command greenroom-bench runs Greenroom's benchmarks (package bench) and
// prints a Markdown table; the results go to <out>/<timestamp>.json. It is
// a command of its own, not part of the operator CLI, because it links
// every service and an embedded nats-server; `greenroom bench` runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/bench"
	"github.com/greenroom-dev/greenroom/libs/settings"
)

// Exit codes, as the operator CLI's.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// apiURLDefault and adminTokenFile match `make up`.
const (
	apiURLDefault  = "http://127.0.0.1:8080"
	adminTokenFile = ".run/admin-token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() + " (see --help)" }

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := newCommand(getenv)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "greenroom-bench: %s\n", strings.TrimSpace(err.Error()))
	if errors.As(err, new(usageError)) {
		return exitUsage
	}
	return exitFailure
}

func newCommand(getenv func(string) string) *cobra.Command {
	o := bench.Options{}
	var only, runDir, natsURL, apiURL, adminToken string
	databaseURL := settings.DatabaseURLDefault
	var running bool
	cmd := &cobra.Command{
		Use:   "greenroom-bench",
		Short: "Measure Greenroom against the raw limits it is bounded by",
		Long: `Run Greenroom's benchmarks and print a Markdown table; the full results go
to <out>/<timestamp>.json (machine, and for each figure its raw limit, the
ratio, the target and whether it was met). 'greenroom bench' and 'make bench'
run this command.

Each scenario starts its own PostgreSQL database (on the local server, as
scripts/ensure-postgres.sh sets it up), an embedded JetStream server and the
services on loopback, and removes every container it made when it ends. Every
loop is bounded in count and time. Run it from the repository: the footprint
scenario builds the services.

With --running it measures the deployment of --api-url, --nats-url,
--database-url and --admin-token instead (by default the one 'make up'
started): the staged, refill and footprint scenarios run there, under a zone,
agent, group and user named bench* (kept for the next run) and workspaces
named bench-<run>-* (deleted with their sessions at the end). The footprint
reads the services' pid files in --run-dir. The other scenarios need an
environment of their own and are skipped with a note.

Scenarios: ` + strings.Join(bench.Scenarios, ", ") + `.`,
		Example: `  greenroom-bench --quick
  greenroom-bench --only handoff
  greenroom-bench --only assign --cpuprofile assign.prof
  greenroom-bench --running --quick
  make bench QUICK=1`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if only != "" {
				o.Only = strings.Split(only, ",")
			}
			for _, s := range o.Only {
				if !slices.Contains(bench.Scenarios, s) {
					return usageError{fmt.Errorf("unknown scenario %q in --only (known: %s)", s, strings.Join(bench.Scenarios, ", "))}
				}
			}
			o.Stdout = cmd.OutOrStdout()
			if running {
				settings.FromEnv(getenv, cmd.Flags().Changed, map[string]*string{"nats-url": &natsURL,
					"database-url": &databaseURL, "api-url": &apiURL, "admin-token": &adminToken})
				if databaseURL == settings.DatabaseURLDefault {
					databaseURL = settings.LocalDatabaseURL(databaseURL)
				}
				token := adminToken
				if token == "" {
					if b, err := os.ReadFile(adminTokenFile); err == nil {
						token = strings.TrimSpace(string(b))
					}
				}
				o.Running = &bench.Deployment{DatabaseURL: databaseURL, NatsURL: natsURL,
					APIURL: apiURL, AdminToken: token, RunDir: runDir}
			}
			_, err := bench.Run(o)
			return err
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := cmd.Flags()
	f.BoolVar(&o.Quick, "quick", false, "a short version of every scenario")
	f.StringVar(&o.Out, "out", "bench/results", "directory of the JSON results")
	f.StringVar(&only, "only", "", "comma-separated scenarios to run; empty runs all")
	f.BoolVar(&running, "running", false, "measure the running deployment (make up) instead of private environments")
	f.StringVar(&runDir, "run-dir", ".run", "where the running deployment's pid files are (with --running)")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the assignment or hand-off scenario to this file")
	// Built-in defaults in --help, never the environment's values (a
	// token, a password): the environment fills them as the run starts.
	f.StringVar(&natsURL, "nats-url", settings.NatsURLDefault, "with --running: NATS server URL(s) (env GREENROOM_NATS_URL)")
	f.Var((*settings.RedactedURL)(&databaseURL), "database-url", "with --running: PostgreSQL connection URL (env GREENROOM_DATABASE_URL)")
	f.StringVar(&apiURL, "api-url", apiURLDefault, "with --running: the admin API's base URL (env GREENROOM_API_URL)")
	f.StringVar(&adminToken, "admin-token", "", "with --running: admin API bearer token (env GREENROOM_ADMIN_TOKEN; else read from "+adminTokenFile+"; never shown)")
	return cmd
}
