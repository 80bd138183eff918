package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs the greenroom command line with only env as environment and
// returns what it printed and its exit code.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut, func(k string) string { return env[k] })
	return out.String(), errOut.String(), code
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"},
		{"migrate", "--help"},
		{"request", "--help"},
		{"sessions", "--help"},
		{"pools", "--help"},
		{"audit", "--help"},
		{"audit", "replay", "--help"},
		{"apply", "--help"},
		{"get", "--help"},
		{"delete", "--help"},
		{"demo", "--help"},
		{"demo", "load", "--help"},
		{"demo", "wait", "--help"},
		{"bench", "--help"},
	} {
		out, errOut, code := runCLI(t, nil, args...)
		if code != exitOK || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("greenroom %s: exit %d, stderr %q, stdout lacks usage:\n%s", strings.Join(args, " "), code, errOut, out)
		}
		if len(out) < 300 {
			t.Errorf("greenroom %s: help is only %d bytes", strings.Join(args, " "), len(out))
		}
	}
}

// TestBenchRunsGreenroomBenchWithItsArgumentsAndExitCode: the CLI does
// not link the benchmarks; it runs greenroom-bench found on PATH with the
// arguments as given, and exits with its code.
func TestBenchRunsGreenroomBenchWithItsArgumentsAndExitCode(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"args: $*\"\necho 'unknown scenario \"nope\"' >&2\nexit 2\n"
	if err := os.WriteFile(filepath.Join(dir, benchCommandName), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, map[string]string{"PATH": dir}, "bench", "--only", "assign,nope", "--quick")
	if code != exitUsage || out != "args: --only assign,nope --quick\n" || !strings.Contains(errOut, `unknown scenario "nope"`) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want greenroom-bench's output and its exit code 2", code, out, errOut)
	}
}

func TestBenchWithoutGreenroomBenchSaysHowToGetIt(t *testing.T) {
	_, errOut, code := runCLI(t, map[string]string{"PATH": t.TempDir()}, "bench", "--quick")
	if code != exitFailure || !strings.Contains(errOut, "greenroom-bench") || !strings.Contains(errOut, "make build") {
		t.Fatalf("exit %d, stderr %q; want a failure naming greenroom-bench and make build", code, errOut)
	}
}

func TestUsageErrorsExitWithTwo(t *testing.T) {
	for _, args := range [][]string{
		{"request", "--workspace", "demo", "--zone", "zone-a"},                    // no --user
		{"request", "--user", "alice", "--workspace", "demo", "--zone", "z", "x"}, // stray argument
		{"request", "--user", "alice", "--workspace", "demo", "--zone", "z", "--timeout", "0s"},
		{"request", "--no-such-flag"},
		{"audit", "replay", "--since", "yesterday"},
		{"audit", "replay", "--since", "10m", "--until", "20m"},
		{"audit", "replay", "--since", "10m", "--request-id", "r1"}, // narrows --events only
		{"audit", "timeline"}, // whose?
		{"audit", "timeline", "--request", "r1", "--user", "alice"},
		{"audit", "verify", "--since", "later"},
		{"sessions", "--status", "sleeping"},
		{"sessions", "--api-url", "not a url"},
		{"sessions", "--staging-config", "zone-a"},
		{"pools", "desktops", "gpu-agents"},
	} {
		_, errOut, code := runCLI(t, nil, args...)
		if code != exitUsage || !strings.HasPrefix(errOut, "greenroom: ") {
			t.Errorf("greenroom %s: exit %d, stderr %q; want 2 and a message", strings.Join(args, " "), code, errOut)
		}
	}
}

func TestFlagsDefaultToTheEnvironment(t *testing.T) {
	env := map[string]string{
		"GREENROOM_NATS_URL":     "nats://nats.example:4222",
		"GREENROOM_DATABASE_URL": "postgres://db.example/greenroom",
		"GREENROOM_API_URL":      "http://api.example:8080",
		"GREENROOM_ADMIN_TOKEN":  "s3cret",
	}
	root := newRootCommand(func(k string) string { return env[k] })
	// The environment fills the flags the command line did not give, as a
	// command starts (not in --help, which shows the built-in defaults).
	root.PersistentPreRun(root, nil)
	pf := root.PersistentFlags()
	for flag, want := range map[string]string{
		"nats-url": env["GREENROOM_NATS_URL"], "database-url": env["GREENROOM_DATABASE_URL"],
		"api-url": env["GREENROOM_API_URL"], "admin-token": env["GREENROOM_ADMIN_TOKEN"],
	} {
		if got := pf.Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s defaults to %q, want %q from the environment", flag, got, want)
		}
	}
	root = newRootCommand(func(string) string { return "" })
	if got := root.PersistentFlags().Lookup("api-url").Value.String(); got != "http://127.0.0.1:8080" {
		t.Errorf("--api-url defaults to %q without environment", got)
	}
}

func TestParseTimeFlag(t *testing.T) {
	now := time.Date(2025, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"10m", now.Add(-10 * time.Minute)},
		{"1h30m", now.Add(-90 * time.Minute)},
		{"3d", now.Add(-72 * time.Hour)},
		{"0s", now},
		{"2025-11-24T06:00:00Z", time.Date(2025, 11, 24, 6, 0, 0, 0, time.UTC)},
		{"2025-11-24T07:00:00.5+01:00", time.Date(2025, 11, 24, 6, 0, 0, 500e6, time.UTC)},
	} {
		got, err := parseTimeFlag("since", tc.in, now)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseTimeFlag(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-5m", "2025-11-24", "xd", "-1d"} {
		if _, err := parseTimeFlag("since", bad, now); err == nil {
			t.Errorf("parseTimeFlag(%q) accepted it", bad)
		}
	}
}

func TestShortDataIsOneBoundedLine(t *testing.T) {
	data := json.RawMessage(`{
		"zone": "zone-a", "user": "alice",
		"request_id": "r1"}`)
	if got := shortData(data, 100); got != `{"request_id":"r1","user":"alice","zone":"zone-a"}` {
		t.Errorf("shortData = %s", got)
	}
	long := json.RawMessage(`{"detail":"` + strings.Repeat("x", 300) + `"}`)
	got := shortData(long, 40)
	if n := len([]rune(got)); n != 40 || !strings.HasSuffix(got, "…") {
		t.Errorf("shortData of a long payload = %q (%d runes), want 40 ending in …", got, n)
	}
	if got := shortData(json.RawMessage(`"not\nan object"`), 40); strings.Contains(got, "\n") {
		t.Errorf("shortData kept a newline: %q", got)
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                  "0s",
		42 * time.Second:              "42s",
		3*time.Minute + 7*time.Second: "3m07s",
		5*time.Hour + 2*time.Minute:   "5h02m",
		80 * time.Hour:                "3d",
	} {
		if got := age(d); got != want {
			t.Errorf("age(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestHelpNeverShowsSecretsFromTheEnvironment(t *testing.T) {
	env := map[string]string{"GREENROOM_ADMIN_TOKEN": "s3cr3t-token",
		"GREENROOM_DATABASE_URL": "postgres://greenroom:hunter2@db.internal:5432/greenroom"}
	for _, args := range [][]string{{"--help"}, {"migrate", "--help"}, {"sessions", "--help"}} {
		out, _, code := runCLI(t, env, args...)
		if code != exitOK {
			t.Fatalf("greenroom %s: exit %d", strings.Join(args, " "), code)
		}
		for _, secret := range []string{"s3cr3t-token", "hunter2", ":greenroom@"} {
			if strings.Contains(out, secret) {
				t.Errorf("greenroom %s shows %q:\n%s", strings.Join(args, " "), secret, out)
			}
		}
	}
}
