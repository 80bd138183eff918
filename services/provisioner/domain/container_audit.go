package domain

import "fmt"

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
