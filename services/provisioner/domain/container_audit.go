package domain

import (
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/events"
)

// ContainerSighting is what a Docker engine showed of the container a live
// session's row records.
type ContainerSighting struct {
	// Listed is false when the engine has no container with that id.
	Listed bool
	// State is Docker's state of a listed container: created, running,
	// paused, restarting, removing, exited or dead.
	State string
	// ExitCode is the code an exited container ended with.
	ExitCode int
}

// ContainerVerdict is what the sighting means for the session.
type ContainerVerdict struct {
	// Gone is true when the session has lost its container: it is missing
	// or no longer running, and nothing in Greenroom will bring it back.
	Gone bool
	// Seen says what was seen, as operators read it in the session's
	// failure_reason: "missing", "being removed", "exited (code 137)",
	// "dead", "created".
	Seen string
	// Remove is true when the dead container is still there and must be
	// removed, so that it holds no disk or name.
	Remove bool
}

// JudgeContainer decides whether a staged, assigning or running session
// still has its container. Paused and restarting containers count as
// running, as Docker's own State.Running does: an operator may pause one,
// and only Docker restarts one.
func JudgeContainer(s ContainerSighting) ContainerVerdict {
	if !s.Listed {
		return ContainerVerdict{Gone: true, Seen: "missing"}
	}
	switch s.State {
	case "running", "paused", "restarting":
		return ContainerVerdict{Seen: s.State}
	case "exited":
		return ContainerVerdict{Gone: true, Seen: fmt.Sprintf("exited (code %d)", s.ExitCode), Remove: true}
	case "removing":
		// Someone (make down, an operator) is removing it right now.
		return ContainerVerdict{Gone: true, Seen: "being removed"}
	default:
		return ContainerVerdict{Gone: true, Seen: s.State, Remove: true}
	}
}

// Actions of the Docker engine's container events that the engine watcher
// subscribes to.
const (
	// ContainerDied: the container's process ended (it exited, was killed
	// or ran out of memory); it no longer runs.
	ContainerDied = "die"
	// ContainerDestroyed: the container was removed.
	ContainerDestroyed = "destroy"
	// ContainerOOM: the kernel killed a process of the container for want
	// of memory; "die" follows when that was its main process.
	ContainerOOM = "oom"
)

// ContainerEvent is what a Docker engine reported of a container.
type ContainerEvent struct {
	// Action is ContainerDied, ContainerDestroyed or ContainerOOM.
	Action string
	// ExitCode is the code a died container ended with, when the engine
	// said (it does for "die").
	ExitCode    int
	HasExitCode bool
	// OutOfMemory is true when an "oom" event of the same container came
	// before this one.
	OutOfMemory bool
}

// JudgeContainerEvent says what an event means for a staged, assigning or
// running session whose container it is: died and destroyed containers
// are gone, with the same words the periodic audit uses for an exited
// container ("exited (code 137)"), and "removed". An "oom" event decides
// nothing by itself: the process that ran out of memory may not be the
// container's main one, and when it is, "die" follows.
func JudgeContainerEvent(ev ContainerEvent) ContainerVerdict {
	switch ev.Action {
	case ContainerDied:
		seen := "exited"
		switch {
		case ev.HasExitCode && ev.OutOfMemory:
			seen = fmt.Sprintf("exited (code %d, out of memory)", ev.ExitCode)
		case ev.HasExitCode:
			seen = fmt.Sprintf("exited (code %d)", ev.ExitCode)
		case ev.OutOfMemory:
			seen = "exited (out of memory)"
		}
		return ContainerVerdict{Gone: true, Seen: seen, Remove: true}
	case ContainerDestroyed:
		return ContainerVerdict{Gone: true, Seen: "removed"}
	default:
		return ContainerVerdict{}
	}
}

// ContainerOwnership is what the orphan collector knows of a container
// labelled greenroom.managed=true.
type ContainerOwnership struct {
	// SessionLabel is the container's greenroom.session label, "" when it
	// has none.
	SessionLabel string
	// SessionFound is true when the session the label names has a row.
	SessionFound bool
	// SessionLive is true when that session is in any status but
	// destroyed or failed: provisioning, staged, assigning, running or
	// destroying (whose own destroy removes the container).
	SessionLive bool
	// SessionStatus is that session's status, for the verdict's words.
	SessionStatus string
	// Age is how long ago the container was created, never more than it
	// really is.
	Age time.Duration
}

// OrphanVerdict says whether a managed container is an orphan to remove.
type OrphanVerdict struct {
	Orphan bool
	// Why is what made it one, for the log: "no session", "session
	// failed", "session destroyed".
	Why string
}

// JudgeOrphan decides whether a managed container has no live session and
// was made long enough ago (grace; negative means at once) to be removed.
//
// A container Greenroom just made is never one: its session's row is
// committed, in status provisioning, before the container is created (the
// assigner and the reconciler insert the row and emit
// provision.requested in one transaction; the provisioner's
// ProvisionSession only reaches docker create after PlaceSession read
// that row and wrote its agent), and the collector lists containers
// before it reads sessions, so every container it sees has a row it can
// read. The grace period is a second line for what that order cannot
// cover: a row written by a replica whose commit is not visible yet, and
// the clocks of an engine and of the provisioner drifting apart.
//
// A container without a greenroom.session label was not made by
// Greenroom for a session and is left alone.
func JudgeOrphan(c ContainerOwnership, grace time.Duration) OrphanVerdict {
	if c.SessionLabel == "" || c.SessionLive {
		return OrphanVerdict{}
	}
	if grace >= 0 && c.Age < grace {
		return OrphanVerdict{}
	}
	if !c.SessionFound {
		return OrphanVerdict{Orphan: true, Why: "no session"}
	}
	return OrphanVerdict{Orphan: true, Why: "session " + c.SessionStatus}
}

// OrphanRemoved is what greenroom.container.removed says of an orphan
// container c the collector removed: its agent (its greenroom.agent
// label) and session (its greenroom.session label, when that is a session
// id at all).
func OrphanRemoved(c Container) events.ContainerRemoved {
	r := events.ContainerRemoved{ContainerID: c.ID, Agent: c.Labels[LabelAgent], Cause: events.CauseOrphan}
	if id := c.Labels[LabelSession]; isUUID(id) {
		r.SessionID = id
	}
	return r
}

// isUUID reports whether s is a UUID in its text form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal digits), as the
// events' schemas check session ids.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F'):
			return false
		}
	}
	return true
}
