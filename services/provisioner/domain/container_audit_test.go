package domain

import (
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

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

func TestContainerEventTellsHowTheContainerWent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		event ContainerEvent
		want  ContainerVerdict
	}{
		{"killed", ContainerEvent{Action: ContainerDied, ExitCode: 137, HasExitCode: true}, ContainerVerdict{Gone: true, Seen: "exited (code 137)", Remove: true}},
		{"exited cleanly", ContainerEvent{Action: ContainerDied, HasExitCode: true}, ContainerVerdict{Gone: true, Seen: "exited (code 0)", Remove: true}},
		{"out of memory", ContainerEvent{Action: ContainerDied, ExitCode: 137, HasExitCode: true, OutOfMemory: true}, ContainerVerdict{Gone: true, Seen: "exited (code 137, out of memory)", Remove: true}},
		{"died, no code said", ContainerEvent{Action: ContainerDied}, ContainerVerdict{Gone: true, Seen: "exited", Remove: true}},
		{"removed", ContainerEvent{Action: ContainerDestroyed}, ContainerVerdict{Gone: true, Seen: "removed"}},
		{"a process ran out of memory", ContainerEvent{Action: ContainerOOM}, ContainerVerdict{}},
		{"anything else", ContainerEvent{Action: "start"}, ContainerVerdict{}},
	} {
		if got := JudgeContainerEvent(tc.event); got != tc.want {
			t.Errorf("%s: JudgeContainerEvent(%+v) = %+v, want %+v", tc.name, tc.event, got, tc.want)
		}
	}
}

func TestContainerIsAnOrphanOnlyWithoutALiveSessionAfterTheGracePeriod(t *testing.T) {
	t.Parallel()
	const grace = 30 * time.Second
	old := time.Minute
	for _, tc := range []struct {
		name  string
		c     ContainerOwnership
		grace time.Duration
		want  OrphanVerdict
	}{
		{"no session row", ContainerOwnership{SessionLabel: "s", Age: old}, grace, OrphanVerdict{Orphan: true, Why: "no session"}},
		{"session failed", ContainerOwnership{SessionLabel: "s", SessionFound: true, SessionStatus: "failed", Age: old}, grace, OrphanVerdict{Orphan: true, Why: "session failed"}},
		{"session destroyed", ContainerOwnership{SessionLabel: "s", SessionFound: true, SessionStatus: "destroyed", Age: old}, grace, OrphanVerdict{Orphan: true, Why: "session destroyed"}},
		{"live session", ContainerOwnership{SessionLabel: "s", SessionFound: true, SessionLive: true, SessionStatus: "running", Age: old}, grace, OrphanVerdict{}},
		{"session being destroyed", ContainerOwnership{SessionLabel: "s", SessionFound: true, SessionLive: true, SessionStatus: "destroying", Age: old}, grace, OrphanVerdict{}},
		{"just created, no row yet", ContainerOwnership{SessionLabel: "s", Age: time.Second}, grace, OrphanVerdict{}},
		{"at the grace period", ContainerOwnership{SessionLabel: "s", Age: grace}, grace, OrphanVerdict{Orphan: true, Why: "no session"}},
		{"engine clock ahead", ContainerOwnership{SessionLabel: "s", Age: -time.Minute}, grace, OrphanVerdict{}},
		{"no grace period", ContainerOwnership{SessionLabel: "s", Age: -time.Second}, -1, OrphanVerdict{Orphan: true, Why: "no session"}},
		{"no session label", ContainerOwnership{Age: old}, grace, OrphanVerdict{}},
	} {
		if got := JudgeOrphan(tc.c, tc.grace); got != tc.want {
			t.Errorf("%s: JudgeOrphan(%+v, %s) = %+v, want %+v", tc.name, tc.c, tc.grace, got, tc.want)
		}
	}
}

func TestAnOrphanRemovedNamesItsAgentAndItsSessionWhenItHasOne(t *testing.T) {
	t.Parallel()
	const sid = "0192f3a4-5b6c-7d8e-9f01-23456789abcd"
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   events.ContainerRemoved
	}{
		{"a session's container", map[string]string{LabelSession: sid, LabelAgent: "agent-1"},
			events.ContainerRemoved{ContainerID: "c1", Agent: "agent-1", SessionID: sid, Cause: events.CauseOrphan}},
		{"a label that is no session id", map[string]string{LabelSession: "session-1", LabelAgent: "agent-1"},
			events.ContainerRemoved{ContainerID: "c1", Agent: "agent-1", Cause: events.CauseOrphan}},
		{"an id one character short", map[string]string{LabelSession: sid[1:], LabelAgent: "agent-1"},
			events.ContainerRemoved{ContainerID: "c1", Agent: "agent-1", Cause: events.CauseOrphan}},
		{"no agent label", map[string]string{LabelSession: sid},
			events.ContainerRemoved{ContainerID: "c1", SessionID: sid, Cause: events.CauseOrphan}},
	} {
		if got := OrphanRemoved(Container{ID: "c1", Labels: tc.labels}); got != tc.want {
			t.Errorf("%s: OrphanRemoved = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
