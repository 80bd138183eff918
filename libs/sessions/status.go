// Package sessions owns the sessions table and every change of a session's
// status. No other code updates sessions.status: an illegal transition is an
// error (ErrIllegalTransition), and a transition from a status the row no
// longer has is reported as ErrStale so racing replicas see they lost.
package sessions

import (
	"errors"
	"fmt"
	"slices"
)

// Status is a session's lifecycle state.
type Status string

// Session statuses. Staged: provisioning → staged → assigning → running →
// destroying → destroyed. On demand: provisioning → running. Any live
// status may become failed.
const (
	Provisioning Status = "provisioning"
	Staged       Status = "staged"
	Assigning    Status = "assigning"
	Running      Status = "running"
	Destroying   Status = "destroying"
	Destroyed    Status = "destroyed"
	Failed       Status = "failed"
)

// Origins of a session.
const (
	OriginStaged   = "staged"
	OriginOnDemand = "on_demand"
)

var (
	// ErrIllegalTransition means the lifecycle does not allow the change.
	ErrIllegalTransition = errors.New("illegal session transition")
	// ErrStale means the session was no longer in the expected status: a
	// concurrent actor changed it first.
	ErrStale = errors.New("session status changed concurrently")
	// ErrNotFound means no such session.
	ErrNotFound = errors.New("session not found")
	// ErrNoneStaged means a claim found no staged session.
	ErrNoneStaged = errors.New("no staged session available")
)

var transitions = map[Status][]Status{
	Provisioning: {Staged, Running, Destroying, Failed},
	Staged:       {Assigning, Destroying, Failed},
	Assigning:    {Running, Destroying, Failed},
	Running:      {Destroying, Failed},
	Destroying:   {Destroyed, Failed},
	Destroyed:    {},
	Failed:       {},
}

// CanTransition reports whether the lifecycle allows from → to.
func CanTransition(from, to Status) bool {
	return slices.Contains(transitions[from], to)
}

// Live reports whether a session in status s still holds (or may soon hold)
// a container and its agent's capacity.
func (s Status) Live() bool { return s != Destroyed && s != Failed }

// Terminal reports whether no further transition is possible.
func (s Status) Terminal() bool { return len(transitions[s]) == 0 }

// Valid reports whether s is a known status.
func (s Status) Valid() bool { _, ok := transitions[s]; return ok }

func checkTransition(from, to Status) error {
	if !CanTransition(from, to) {
		return fmt.Errorf("%w: %s → %s", ErrIllegalTransition, from, to)
	}
	return nil
}
