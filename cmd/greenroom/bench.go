package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/bench"
)

func newBenchCommand() *cobra.Command {
	o := bench.Options{}
	var only string
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

Scenarios: ` + strings.Join(bench.Scenarios, ", ") + `.`,
		Example: `  greenroom bench --quick
  greenroom bench --only assign --cpuprofile assign.prof
  make bench QUICK=1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if only != "" {
				o.Only = strings.Split(only, ",")
			}
			o.Stdout = cmd.OutOrStdout()
			_, err := bench.Run(o)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Quick, "quick", false, "a short version of every scenario (under five minutes)")
	f.StringVar(&o.Out, "out", "bench/results", "directory of the JSON results")
	f.StringVar(&only, "only", "", "comma-separated scenarios to run; empty runs all")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the assignment scenario to this file")
	return cmd
}
