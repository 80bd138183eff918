package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// defaultStatePath is where assign records the user: under /dev/shm, a
// tmpfs in every container, so that recording it is a few system calls in
// memory, not a round trip each through the engine's storage driver (on a
// fuse-overlayfs engine every file operation in the container's layer goes
// through a FUSE daemon). The state is the container's: it is emptied when
// the container stops, as a staged container is never restarted (a
// restarted one would show itself unassigned).
// The image is FROM scratch, so assign creates the directory itself.
const defaultStatePath = "/dev/shm/greenroom-demo/state.json"

// state is what assign records and what serve reports. The zero value means
// "staged, not yet assigned".
type state struct {
	SessionID  string     `json:"session_id"`
	User       string     `json:"user"`
	UserID     string     `json:"user_id"`
	AssignedAt *time.Time `json:"assigned_at"` // null until assigned
	// FromCreation: the container was made for its user (on demand), so
	// the user comes from its environment, not from assign. Set by the
	// server when it answers; assign leaves it false.
	FromCreation bool `json:"from_creation"`
	// WebFilter is the policy the container was given (from its
	// environment, set by the server when it answers).
	WebFilter *webFilter `json:"web_filter"`
}

// webFilter is GREENROOM_WEB_FILTER as Greenroom writes it.
type webFilter struct {
	Name           string   `json:"name"`
	DefaultAllow   bool     `json:"default_allow"`
	AllowedDomains []string `json:"allowed_domains"`
	DeniedDomains  []string `json:"denied_domains"`
}

// readState returns the recorded state, or the zero state when nothing has
// been assigned yet (the file does not exist).
func readState(path string) (state, error) {
	var st state
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read state %s: %w", path, err)
	}
	return st, nil
}

// writeState replaces the state file atomically: the server reads it on
// every request and must never see a half-written file. It is not synced:
// the state is the container's, which does not outlive a crash of its host
// (the session is destroyed with it), and where the file is on the
// container's layer (GREENROOM_DEMO_STATE elsewhere) an fsync was most of
// the assign hook's time.
func writeState(path string, st state) (err error) {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	// The temporary file lives next to the target so the rename stays on one
	// file system (and scratch images have no /tmp anyway).
	f, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}
