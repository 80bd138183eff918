package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/bench"
)

func newBenchCommand(g *globalOptions) *cobra.Command {
	o := bench.Options{}
	var only, runDir string
	var running bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Greenroom against the raw limits it is bounded by",
		Long: `Run the benchmarks of issue 5 and print a Markdown table; the full results
go to <out>/<timestamp>.json (machine, and for each figure its raw limit, the
ratio, the target and whether it was met).

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
		Example: `  greenroom bench --quick
  greenroom bench --only assign --cpuprofile assign.prof
  greenroom bench --running --quick
  make bench QUICK=1`,
		Args: noArgs,
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
				o.Running = &bench.Deployment{DatabaseURL: g.DatabaseURL, NatsURL: g.NatsURL,
					APIURL: g.APIURL, AdminToken: g.token(), RunDir: runDir}
			}
			_, err := bench.Run(o)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Quick, "quick", false, "a short version of every scenario")
	f.StringVar(&o.Out, "out", "bench/results", "directory of the JSON results")
	f.StringVar(&only, "only", "", "comma-separated scenarios to run; empty runs all")
	f.BoolVar(&running, "running", false, "measure the running deployment (make up) instead of private environments")
	f.StringVar(&runDir, "run-dir", ".run", "where the running deployment's pid files are (with --running)")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the assignment or hand-off scenario to this file")
	return cmd
}
