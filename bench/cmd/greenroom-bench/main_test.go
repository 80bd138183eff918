package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUnknownScenarioIsAUsageErrorBeforeAnythingStarts(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"--only", "assign,nope"}, &out, &errOut, func(string) string { return "" })
	if code != exitUsage || !strings.Contains(errOut.String(), `unknown scenario "nope"`) {
		t.Fatalf("exit %d, stderr %q; want a usage error naming the scenario", code, errOut.String())
	}
}

func TestHelpNamesEveryScenario(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errOut, func(string) string { return "" }); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	for _, want := range []string{"Usage:", "handoff", "--running", "--quick"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestHelpNeverShowsSecretsFromTheEnvironment(t *testing.T) {
	env := map[string]string{"GREENROOM_ADMIN_TOKEN": "s3cr3t-token",
		"GREENROOM_DATABASE_URL": "postgres://greenroom:hunter2@db.internal:5432/greenroom"}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errOut, func(k string) string { return env[k] }); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	for _, secret := range []string{"s3cr3t-token", "hunter2", ":greenroom@"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("--help shows %q:\n%s", secret, out.String())
		}
	}
}
