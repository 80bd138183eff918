// Package domain holds the provisioner's decisions as pure functions, with
// no I/O: which agent of which zone hosts a session (placement.go), what a
// session's container looks like and the URL it is reached at
// (container.go), the command a workspace runs when a staged session is
// assigned (assign.go), how far a staging pool is from its desired size
// and what to do about it (pool.go), and whether a session has lost its
// container or a container its session (container_audit.go). The
// adapters carry these decisions out, and report what they find as the
// plain values of engine.go (a container, an exec's result).
package domain
