package dnstest

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill named when the test binary
// dies without running its cleanups (a panic, go test's -timeout), so
// that no named outlives the tests that started it.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
