package domain

import "testing"

func TestSessionLosesItsContainerWhenMissingOrNotRunning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		sighting ContainerSighting
		want     ContainerVerdict
	}{
		{"not listed", ContainerSighting{}, ContainerVerdict{Gone: true, Seen: "missing"}},
		{"running", ContainerSighting{Listed: true, State: "running"}, ContainerVerdict{Seen: "running"}},
		{"paused by an operator", ContainerSighting{Listed: true, State: "paused"}, ContainerVerdict{Seen: "paused"}},
		{"restarting", ContainerSighting{Listed: true, State: "restarting"}, ContainerVerdict{Seen: "restarting"}},
		{"killed", ContainerSighting{Listed: true, State: "exited", ExitCode: 137}, ContainerVerdict{Gone: true, Seen: "exited (code 137)", Remove: true}},
		{"exited cleanly", ContainerSighting{Listed: true, State: "exited"}, ContainerVerdict{Gone: true, Seen: "exited (code 0)", Remove: true}},
		{"dead", ContainerSighting{Listed: true, State: "dead"}, ContainerVerdict{Gone: true, Seen: "dead", Remove: true}},
		{"being removed by someone else", ContainerSighting{Listed: true, State: "removing"}, ContainerVerdict{Gone: true, Seen: "being removed"}},
		{"never started", ContainerSighting{Listed: true, State: "created"}, ContainerVerdict{Gone: true, Seen: "created", Remove: true}},
	} {
		if got := JudgeContainer(tc.sighting); got != tc.want {
			t.Errorf("%s: JudgeContainer(%+v) = %+v, want %+v", tc.name, tc.sighting, got, tc.want)
		}
	}
}
