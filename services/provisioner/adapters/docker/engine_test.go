package docker

import "testing"

func TestExitCodeIsReadFromTheListedStatus(t *testing.T) {
	t.Parallel()
	for status, want := range map[string]int{
		"Exited (137) 5 seconds ago":    137,
		"Exited (0) About a minute ago": 0,
		"Exited (-1) 2 hours ago":       -1,
		"Up 3 minutes":                  0,
		"Created":                       0,
		"":                              0,
	} {
		if got := exitCodeOf(status); got != want {
			t.Errorf("exitCodeOf(%q) = %d, want %d", status, got, want)
		}
	}
}
