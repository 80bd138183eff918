package dnstest

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// A server answers once Start returns and is gone, process and files,
// once its test's cleanups ran.
func TestStartAnswersAndCleansUp(t *testing.T) {
	var pid int
	var dir string
	t.Run("server", func(t *testing.T) {
		s := Start(t)
		if err := s.answersSOA(t.Context(), "udp"); err != nil {
			t.Errorf("UDP: %v", err)
		}
		if err := s.answersSOA(t.Context(), "tcp"); err != nil {
			t.Errorf("TCP: %v", err)
		}
		pid, dir = s.cmd.Process.Pid, s.Dir
	})
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("named (pid %d) after cleanup: signal 0: %v, want ESRCH", pid, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after cleanup: %v, want it removed", dir, err)
	}
}
