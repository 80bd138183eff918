//go:build !linux

package dnstest

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal: a named whose test binary died must be ended by hand there.
func setParentDeathSignal(*exec.Cmd) {}
