package command

import (
	"strings"
	"testing"
)

func TestFailureOutputCanBeStoredInJSONB(t *testing.T) {
	got := trimOutput("boom\x00 at\x1b[31m line\n2\t")
	if strings.ContainsAny(got, "\x00\x1b") {
		t.Fatalf("control characters kept: %q", got)
	}
	if got != "boom at [31m line 2" {
		t.Fatalf("trimOutput = %q", got)
	}
	long := strings.Repeat("x", 10*failureOutputLimit)
	if got := trimOutput(long); len(got) > failureOutputLimit+len("…") {
		t.Fatalf("output not bounded: %d bytes", len(got))
	}
}
