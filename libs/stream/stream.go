// Package stream owns the GREENROOM stream's configuration: its limits
// (how long events are kept, the duplicate window, replicas) are set in
// one place, by `greenroom migrate` (Apply), and never by a service.
//
// A service at start only makes sure the stream exists (Ensure): it uses
// the stream as it finds it, and creates it with the built-in defaults
// only when it is absent (a first start before any migrate, a test's
// fresh server), so that services may still start in any order. A replica
// started with other settings therefore cannot change the retention of
// the whole deployment, as it could when every start re-applied the
// limits.
package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/bus"
)

// Config is the stream's limits; zero values take the defaults of
// libs/bus (max age 30 days, duplicate window 2 minutes, 1 replica).
type Config struct {
	// MaxAge is how long events are kept for replay and audit.
	MaxAge time.Duration
	// Duplicates is the window in which a repeated Nats-Msg-Id is dropped.
	Duplicates time.Duration
	// Replicas is 1 locally and 3 in a NATS cluster.
	Replicas int
	// MaxBytes bounds the stream's size (the oldest events go first when
	// it is reached); -1, the default, is no bound but MaxAge.
	MaxBytes int64
}

// ParseBytes reads a MaxBytes setting: a size such as 50GB or 500MB (SI:
// 1 GB is 10⁹ bytes), or -1 for no bound.
func ParseBytes(s string) (int64, error) {
	if strings.TrimSpace(s) == "-1" {
		return -1, nil
	}
	n, err := units.FromHumanSize(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size such as 50GB, nor -1", s)
	}
	return n, nil
}

// FormatBytes writes a MaxBytes setting back: "50GB", or "unlimited".
func FormatBytes(n int64) string {
	if n < 0 {
		return "unlimited"
	}
	return units.HumanSize(float64(n))
}

// WithDefaults returns c with its zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.MaxAge == 0 {
		c.MaxAge = bus.StreamMaxAgeDefault
	}
	if c.Duplicates == 0 {
		c.Duplicates = bus.StreamDuplicatesDefault
	}
	if c.Replicas == 0 {
		c.Replicas = bus.StreamReplicasDefault
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	return c
}

// Validate reports a limit the stream cannot have.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.MaxAge < 0:
		return fmt.Errorf("stream max age %s is negative", c.MaxAge)
	case c.Duplicates < 0:
		return fmt.Errorf("stream duplicate window %s is negative", c.Duplicates)
	case c.Duplicates > c.MaxAge:
		return fmt.Errorf("stream duplicate window %s is longer than its max age %s", c.Duplicates, c.MaxAge)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("stream replicas %d: must be 1 to 5", c.Replicas)
	case c.MaxBytes < -1:
		return fmt.Errorf("stream max bytes %d: a size, or -1 for no bound", c.MaxBytes)
	}
	return nil
}

// jetstreamConfig is the full stream configuration for c. The stream is
// the audit log, so it denies deleting a message and purging (JetStream
// refuses both through its API, and refuses to turn them back off): events
// leave it only by age or, with MaxBytes, size.
func (c Config) jetstreamConfig() jetstream.StreamConfig {
	c = c.WithDefaults()
	return jetstream.StreamConfig{
		Name:        bus.StreamName,
		Description: "Greenroom: every request, decision and outcome, in order",
		Subjects:    []string{"greenroom.>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      c.MaxAge,
		MaxBytes:    c.MaxBytes,
		Duplicates:  c.Duplicates,
		Replicas:    c.Replicas,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// Of returns the limits of an existing stream's configuration.
func Of(sc jetstream.StreamConfig) Config {
	return Config{MaxAge: sc.MaxAge, Duplicates: sc.Duplicates, Replicas: sc.Replicas, MaxBytes: sc.MaxBytes}
}

// Ensure is what a service calls at start: it returns the stream as it
// is, and creates it with the defaults (and replicas, when not 0) only if
// it does not exist. It never changes an existing stream; created
// reports whether this call made it.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int) (s jetstream.Stream, created bool, err error) {
	s, err = js.Stream(ctx, bus.StreamName)
	if err == nil {
		return s, false, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, false, fmt.Errorf("looking up stream %s: %w", bus.StreamName, err)
	}
	s, err = js.CreateStream(ctx, Config{Replicas: replicas}.jetstreamConfig())
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Another replica, or migrate, created it meanwhile: use theirs.
		s, err = js.Stream(ctx, bus.StreamName)
		if err != nil {
			return nil, false, fmt.Errorf("looking up stream %s: %w", bus.StreamName, err)
		}
		return s, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("creating stream %s: %w", bus.StreamName, err)
	}
	return s, true, nil
}

// Change is what Apply did to the stream.
type Change struct {
	// Created is true when the stream did not exist.
	Created bool
	// Changed names the limits Apply changed, as "max_age 720h0m0s → 24h0m0s".
	Changed []string
	// Config is the stream's limits now.
	Config Config
}

// Apply makes the stream's limits cfg (zero values: the defaults),
// creating the stream when it is absent. It is `greenroom migrate`'s, the
// one place the limits are set.
func Apply(ctx context.Context, js jetstream.JetStream, cfg Config) (Change, error) {
	if err := cfg.Validate(); err != nil {
		return Change{}, err
	}
	cfg = cfg.WithDefaults()
	want := cfg.jetstreamConfig()
	s, err := js.Stream(ctx, bus.StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return Change{}, fmt.Errorf("creating stream %s: %w", bus.StreamName, err)
		}
		return Change{Created: true, Config: cfg}, nil
	}
	if err != nil {
		return Change{}, fmt.Errorf("looking up stream %s: %w", bus.StreamName, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Change{}, fmt.Errorf("reading stream %s: %w", bus.StreamName, err)
	}
	have := info.Config
	var changed []string
	if have.MaxAge != cfg.MaxAge {
		changed = append(changed, fmt.Sprintf("max_age %s → %s", have.MaxAge, cfg.MaxAge))
	}
	if have.Duplicates != cfg.Duplicates {
		changed = append(changed, fmt.Sprintf("duplicates %s → %s", have.Duplicates, cfg.Duplicates))
	}
	if have.Replicas != cfg.Replicas {
		changed = append(changed, fmt.Sprintf("replicas %d → %d", have.Replicas, cfg.Replicas))
	}
	if have.MaxBytes != cfg.MaxBytes {
		changed = append(changed, fmt.Sprintf("max_bytes %s → %s", FormatBytes(have.MaxBytes), FormatBytes(cfg.MaxBytes)))
	}
	if !have.DenyDelete || !have.DenyPurge {
		changed = append(changed, "deny_delete, deny_purge → true")
	}
	if have.Description != want.Description || !slices.Equal(have.Subjects, want.Subjects) {
		changed = append(changed, "subjects/description")
	}
	if len(changed) == 0 {
		return Change{Config: cfg}, nil
	}
	// Keep what this package does not own (set by hand, or by a newer
	// nats-server's defaults) and change only the limits.
	have.MaxAge, have.Duplicates, have.Replicas, have.MaxBytes = cfg.MaxAge, cfg.Duplicates, cfg.Replicas, cfg.MaxBytes
	have.Description, have.Subjects = want.Description, want.Subjects
	have.DenyDelete, have.DenyPurge = true, true
	if _, err := js.UpdateStream(ctx, have); err != nil {
		return Change{}, fmt.Errorf("updating stream %s (%v): %w", bus.StreamName, changed, err)
	}
	return Change{Changed: changed, Config: cfg}, nil
}
