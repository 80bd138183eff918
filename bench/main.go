// Package bench measures Greenroom against the raw limits it is bounded by,
// side by side in one run on one machine (issue 5). It starts its own
// PostgreSQL database (on the local server), an embedded JetStream server
// and the services, on loopback only. Every loop is bounded in count and
// time, and every container it makes is removed at the end.
//
// It is run by `greenroom bench` (and `make bench`), which writes
// <out>/<timestamp>.json and prints a Markdown table.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
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
	// Deployment is the API URL of the running deployment measured, empty
	// when the bench ran private environments.
	Deployment string   `json:"deployment,omitempty"`
	Seconds    float64  `json:"seconds"`
	Machine    Machine  `json:"machine"`
	Results    []Result `json:"results"`
	Notes      []string `json:"notes,omitempty"`
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

// Options of a run.
type Options struct {
	// Quick runs a short version of every scenario.
	Quick bool
	// Out is the directory of the JSON results.
	Out string
	// Only lists the scenarios to run (see Scenarios); empty runs all.
	Only []string
	// CPUProfile, when set, receives a CPU profile of the assignment
	// scenario (the services run in this process).
	CPUProfile string
	// Stdout receives the Markdown table; progress goes to stderr.
	Stdout io.Writer
	// Running, when set, measures that deployment instead of starting
	// private environments; scenarios that need one of their own are
	// skipped with a note saying why.
	Running *Deployment
}

// Scenarios are the names Options.Only accepts.
var Scenarios = []string{"assign", "staged", "handoff", "refill", "settings", "roll", "provision", "idle", "footprint", "console", "audit"}

// Run runs the scenarios, writes the JSON report and prints the table. It
// returns the report's path, and an error if a scenario failed (the report
// is written all the same).
func Run(o Options) (string, error) {
	if o.Out == "" {
		o.Out = "bench/results"
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	for _, s := range o.Only {
		if !slices.Contains(Scenarios, s) {
			return "", fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	quick := o.Quick
	report = Report{StartedAt: time.Now().UTC(), Quick: quick, Machine: machine()}
	stopping = make(chan struct{})
	target = o.Running
	if target != nil {
		report.Deployment = target.APIURL
	}
	selected := map[string]bool{}
	for _, s := range Scenarios {
		if len(o.Only) > 0 && !slices.Contains(o.Only, s) {
			continue
		}
		if why := runningScenarios[s]; target != nil && why != "" {
			note("%s skipped against a running deployment: %s; run greenroom bench without --running for it", s, why)
			continue
		}
		selected[s] = true
	}
	want := func(s string) bool { return selected[s] }

	// Ctrl-C still tears the environments down: scenarios watch stopping.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted; cleaning up")
		stop()
	}()

	var failed []string
	if target != nil && want("footprint") {
		runningFootprint(*target, "idle")
	}
	if want("assign") {
		if err := profiled(o.CPUProfile, func() error { return assignScenario(quick) }); err != nil {
			note("assignment scenario failed: %v", err)
			failed = append(failed, "assign")
		}
	}
	if (want("staged") || want("refill") || want("settings")) && !interrupted() {
		if err := containerScenarios(quick, want("staged"), want("refill"), want("settings")); err != nil {
			note("container scenarios failed: %v", err)
			failed = append(failed, "staged/refill")
		}
	}
	if want("handoff") && !interrupted() {
		if err := profiled(o.CPUProfile, func() error { return handoffScenario(quick) }); err != nil {
			note("hand-off scenario failed: %v", err)
			failed = append(failed, "handoff")
		}
	}
	if want("roll") && !interrupted() {
		if err := rollScenario(quick); err != nil {
			note("pool roll scenario failed: %v", err)
			failed = append(failed, "roll")
		}
	}
	if (want("provision") || want("idle")) && !interrupted() {
		if err := provisionScenarios(quick, want("provision"), want("idle")); err != nil {
			note("provisioning scenarios failed: %v", err)
			failed = append(failed, "provision/idle")
		}
	}
	if want("console") && !interrupted() {
		if err := consoleScenario(quick); err != nil {
			note("admin console scenario failed: %v", err)
			failed = append(failed, "console")
		}
	}
	if want("audit") && !interrupted() {
		if err := auditScenario(quick); err != nil {
			note("audit scenario failed: %v", err)
			failed = append(failed, "audit")
		}
	}
	if target != nil && want("footprint") {
		runningFootprint(*target, "after the scenarios")
	} else if want("footprint") && !interrupted() {
		if err := footprintScenario(quick); err != nil {
			note("footprint scenario failed: %v", err)
			failed = append(failed, "footprint")
		}
	}
	report.Seconds = round(time.Since(report.StartedAt).Seconds())

	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.Out, report.StartedAt.Format("20060102T150405Z")+".json")
	b, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	fmt.Fprint(o.Stdout, markdown(report))
	fmt.Fprintf(o.Stdout, "\nResults: %s (%.0f s)\n", path, report.Seconds)
	if interrupted() {
		return path, fmt.Errorf("interrupted")
	}
	if len(failed) > 0 {
		return path, fmt.Errorf("scenarios failed: %s (see the notes)", strings.Join(failed, ", "))
	}
	return path, nil
}

func markdown(r Report) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "\nMachine: %d cores, %.1f GiB, Linux %s, Docker Engine %s, %s, %s\n\n",
		m.Cores, float64(m.MemoryBytes)/(1<<30), m.Kernel, m.DockerVersion, m.GoVersion, m.PostgresVersion)
	if r.Deployment != "" {
		fmt.Fprintf(&b, "Measured against the running deployment at %s.\n\n", r.Deployment)
	}
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
