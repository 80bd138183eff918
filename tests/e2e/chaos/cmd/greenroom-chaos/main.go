// Command greenroom-chaos is `make chaos`: Greenroom's fault matrix (package
// tests/e2e/chaos). It builds the services, runs 2 replicas of each and 3
// assigners with their own nats-server on loopback and a fresh database on
// the local PostgreSQL, injects each fault under steady load, checks the
// invariants after each, prints the fault table and writes it as JSON.
// Exit status 1 when any invariant was broken, 2 when the run could not be
// made. An interrupt (Ctrl-C, SIGTERM) stops it and removes everything it
// started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/greenroom-dev/greenroom/tests/e2e/chaos"
)

func main() {
	short := flag.Bool("short", false, "the short form (fewer requests; faults: "+strings.Join(chaos.ShortFaults, ", ")+")")
	only := flag.String("faults", "", "comma-separated faults to run, in order (default all: "+strings.Join(chaos.AllFaults, ", ")+")")
	rate := flag.Float64("rate", 0, "requests per second during a phase (default 1.5)")
	out := flag.String("json", ".run/chaos.json", "where to write the report as JSON (empty: nowhere)")
	workDir := flag.String("work-dir", "", "keep binaries, logs and the NATS store here (default: a temporary directory, removed after a clean run)")
	timeout := flag.Duration("timeout", 15*time.Minute, "bound of the whole run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	opts := chaos.Options{Short: *short, Rate: *rate, WorkDir: *workDir}
	if *only != "" {
		opts.Faults = strings.Split(*only, ",")
	}
	rep, err := chaos.Run(ctx, opts)
	if rep != nil && len(rep.Phases) > 0 {
		fmt.Println()
		rep.Table(os.Stdout)
		if *out != "" {
			if werr := rep.WriteJSON(*out); werr != nil {
				fmt.Fprintln(os.Stderr, "greenroom-chaos:", werr)
			} else {
				fmt.Println("report:", *out)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "greenroom-chaos:", err)
		os.Exit(2)
	}
	if !rep.OK() {
		os.Exit(1)
	}
}
