package domain

import (
	"errors"
	"net"
	"strconv"
	"time"
)

// What a Docker engine answers, as the use cases see it (adapters/docker
// makes the calls). The errors are wrapped, to be told apart with
// errors.Is.
var (
	// ErrContainerNotFound: the container does not exist.
	ErrContainerNotFound = errors.New("container not found")
	// ErrContainerNameInUse: a create found a container of that name
	// already.
	ErrContainerNameInUse = errors.New("container name in use")
	// ErrContainerNotRunning: an exec found the container existing but not
	// running (exited, dead, or never started).
	ErrContainerNotRunning = errors.New("container not running")
	// ErrImageNotFound: a create found no such image on the agent. Images
	// are never pulled (DESIGN.md), so retrying cannot help until someone
	// builds or loads it there; the failure says so, and a staging pool
	// waits long before trying again (ShortfallOfFailure).
	ErrImageNotFound = errors.New("image not found")
)

// Container is what the provisioner needs to know about a container.
type Container struct {
	ID      string
	Name    string
	Running bool
	// State is Docker's state: created, running, paused, restarting,
	// removing, exited or dead.
	State string
	// ExitCode is meaningful when not Running.
	ExitCode int
	Labels   map[string]string
	// HostPorts maps a container port to the host port it is published on.
	HostPorts map[int]int
	// Created is when the container was created, by the engine's clock; in
	// a list it is never earlier than the real time (the engine gives whole
	// seconds there; they are rounded up, so that an age computed from it
	// is never more than the container's).
	Created time.Time
}

// ExecResult is how an exec ended.
type ExecResult struct {
	ExitCode int
	// Output is stdout and stderr interleaved, at most the engine's output
	// limit (the tail is kept: errors come last).
	Output string
}

// ShortID is a container id as Docker shows it: its first 12 characters.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ProbeTarget is what a readiness probe asks to answer.
type ProbeTarget struct {
	Host string
	Port int
	// Path, when set, is GET and must answer 2xx or 3xx; when empty the
	// port is probed over TCP.
	Path string
}

func (t ProbeTarget) String() string {
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	if t.Path == "" {
		return "tcp://" + addr
	}
	return "http://" + addr + t.Path
}
