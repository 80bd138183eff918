// Command bench measures Greenroom against the raw limits it is bounded by,
// side by side in one run on one machine (issue 5). It starts its own
// PostgreSQL database (on the local server), an embedded JetStream server
// and the services in-process, on loopback only; every loop is bounded in
// count and time, and every container it makes is removed at the end.
//
//	go run ./bench [-quick] [-out bench/results]
//
// It writes <out>/<timestamp>.json and prints a Markdown table.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

const (
	demoImage = "greenroom/demo-workspace:latest"
	// concurrency of the assigner and of the raw claim loop.
	concurrency = 16
)

// Result is one measured figure, next to the raw limit it is bounded by.
type Result struct {
	Scenario string   `json:"scenario"`
	Metric   string   `json:"metric"`
	Value    float64  `json:"value"`
	Unit     string   `json:"unit"`
	RawLimit *float64 `json:"raw_limit"`
	Ratio    *float64 `json:"ratio"`
	Target   string   `json:"target"`
	Met      *bool    `json:"met"`
}

// Report is the JSON file.
type Report struct {
	StartedAt time.Time `json:"started_at"`
	Quick     bool      `json:"quick"`
	Seconds   float64   `json:"seconds"`
	Machine   Machine   `json:"machine"`
	Results   []Result  `json:"results"`
	Notes     []string  `json:"notes,omitempty"`
}

var report Report

// add records a result. raw ≤ 0 means no raw limit; target "" means none.
func add(scenario, metric string, value float64, unit string, raw float64, ratio float64, target string, met *bool) {
	r := Result{Scenario: scenario, Metric: metric, Value: round(value), Unit: unit, Target: target, Met: met}
	if raw > 0 {
		r.RawLimit = ptr(round(raw))
		r.Ratio = ptr(round(ratio))
	}
	report.Results = append(report.Results, r)
	fmt.Fprintf(os.Stderr, "bench: %s / %s = %.3f %s\n", scenario, metric, value, unit)
}

func note(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	report.Notes = append(report.Notes, s)
	fmt.Fprintln(os.Stderr, "bench: NOTE "+s)
}

func ptr[T any](v T) *T { return &v }

func round(v float64) float64 { return math.Round(v*1000) / 1000 }

func main() {
	quick := flag.Bool("quick", os.Getenv("QUICK") != "" && os.Getenv("QUICK") != "0", "short version of every scenario (QUICK=1)")
	out := flag.String("out", "bench/results", "directory of the JSON results")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the assignment scenario (services included: they run in this process) to this file")
	only := flag.String("only", "", "comma-separated scenarios to run (assign,staged,refill,provision,idle,footprint); empty runs all")
	flag.Parse()

	report = Report{StartedAt: time.Now().UTC(), Quick: *quick, Machine: machine()}
	want := func(s string) bool { return *only == "" || strings.Contains(","+*only+",", ","+s+",") }

	// Ctrl-C still tears the environments down: scenarios watch stopping.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; fmt.Fprintln(os.Stderr, "bench: interrupted; cleaning up"); stop() }()

	failed := false
	if want("assign") {
		if err := profiled(*cpuprofile, func() error { return assignScenario(*quick) }); err != nil {
			note("assignment scenario failed: %v", err)
			failed = true
		}
	}
	if want("staged") || want("refill") {
		if err := containerScenarios(*quick, want("staged"), want("refill")); err != nil {
			note("container scenarios failed: %v", err)
			failed = true
		}
	}
	if (want("provision") || want("idle")) && !interrupted() {
		if err := provisionScenarios(*quick, want("provision"), want("idle")); err != nil {
			note("provisioning scenarios failed: %v", err)
			failed = true
		}
	}
	if want("footprint") && !interrupted() {
		if err := footprintScenario(*quick); err != nil {
			note("footprint scenario failed: %v", err)
			failed = true
		}
	}
	report.Seconds = round(time.Since(report.StartedAt).Seconds())

	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	path := filepath.Join(*out, report.StartedAt.Format("20060102T150405Z")+".json")
	b, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Print(markdown(report))
	fmt.Printf("\nResults: %s (%.0f s)\n", path, report.Seconds)
	if failed {
		os.Exit(1)
	}
}

func markdown(r Report) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "\nMachine: %d cores, %.1f GiB, Linux %s, Docker Engine %s, %s, %s\n\n",
		m.Cores, float64(m.MemoryBytes)/(1<<30), m.Kernel, m.DockerVersion, m.GoVersion, m.PostgresVersion)
	b.WriteString("| scenario | metric | value | raw limit | ratio | target | met |\n|---|---|---:|---:|---:|---|---|\n")
	for _, x := range r.Results {
		raw, ratio, met := "", "", ""
		if x.RawLimit != nil {
			raw = fmt.Sprintf("%g %s", *x.RawLimit, x.Unit)
			ratio = fmt.Sprintf("%.2f", *x.Ratio)
		}
		if x.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*x.Met]
		}
		fmt.Fprintf(&b, "| %s | %s | %g %s | %s | %s | %s | %s |\n", x.Scenario, x.Metric, x.Value, x.Unit, raw, ratio, x.Target, met)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	return b.String()
}

// profiled runs fn under a CPU profile written to path (none when empty).
func profiled(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	return fn()
}

// stopping is closed on interrupt; bounded loops also stop on it.
var stopping = make(chan struct{})

func stop() {
	select {
	case <-stopping:
	default:
		close(stopping)
	}
}

func interrupted() bool {
	select {
	case <-stopping:
		return true
	default:
		return false
	}
}
