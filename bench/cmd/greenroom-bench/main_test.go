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
