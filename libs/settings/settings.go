// Package settings reads the configuration every Greenroom service shares.
// Each setting is an environment variable (GREENROOM_*) with a flag of the
// same name in kebab case (GREENROOM_DATABASE_URL ↔ --database-url); the
// flag wins over the variable, and the defaults work for `make up`.
package settings

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Defaults that match the local deployment of `make up`.
const (
	DatabaseURLDefault = "postgres://greenroom:greenroom@127.0.0.1:5432/greenroom?sslmode=disable"
	NatsURLDefault     = "nats://127.0.0.1:4222"
	HTTPAddrDefault    = "127.0.0.1:8080"
	LogLevelDefault    = "info"
)

// Common holds the settings of DESIGN.md's "Configuration".
type Common struct {
	DatabaseURL string
	NatsURL     string
	HTTPAddr    string
	AdminToken  string
	LogLevel    string
	// StreamReplicas is 1 locally, 3 in a NATS cluster.
	StreamReplicas int
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration
}

// Env returns the environment variable's value, or def when unset.
func Env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// FlagName turns GREENROOM_DATABASE_URL into database-url.
func FlagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "GREENROOM_")), "_", "-")
}

// String registers a string setting read from env and its flag.
func String(fs *flag.FlagSet, p *string, env, def, usage string) {
	fs.StringVar(p, FlagName(env), Env(env, def), fmt.Sprintf("%s (env %s)", usage, env))
}

// Duration registers a duration setting read from env and its flag.
func Duration(fs *flag.FlagSet, p *time.Duration, env string, def time.Duration, usage string) {
	d := def
	if v := os.Getenv(env); v != "" {
		if parsed, err := time.ParseDuration(v); err == nil {
			d = parsed
		} else {
			fmt.Fprintf(os.Stderr, "ignoring %s=%q: %v\n", env, v, err)
		}
	}
	fs.DurationVar(p, FlagName(env), d, fmt.Sprintf("%s (env %s)", usage, env))
}

// Int registers an integer setting read from env and its flag.
func Int(fs *flag.FlagSet, p *int, env string, def int, usage string) {
	n := def
	if v := os.Getenv(env); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			fmt.Fprintf(os.Stderr, "ignoring %s=%q: %v\n", env, v, err)
			n = def
		}
	}
	fs.IntVar(p, FlagName(env), n, fmt.Sprintf("%s (env %s)", usage, env))
}

// Register adds the common settings to fs. httpAddrDefault differs per
// service so that all four can run on one machine.
func (c *Common) Register(fs *flag.FlagSet, httpAddrDefault string) {
	String(fs, &c.DatabaseURL, "GREENROOM_DATABASE_URL", DatabaseURLDefault, "PostgreSQL connection URL")
	String(fs, &c.NatsURL, "GREENROOM_NATS_URL", NatsURLDefault, "NATS server URL(s), comma-separated")
	String(fs, &c.HTTPAddr, "GREENROOM_HTTP_ADDR", httpAddrDefault, "address of the HTTP server (health, readiness, metrics)")
	String(fs, &c.AdminToken, "GREENROOM_ADMIN_TOKEN", "", "bearer token of the admin API")
	String(fs, &c.LogLevel, "GREENROOM_LOG_LEVEL", LogLevelDefault, "log level: debug, info, warn, error")
	Int(fs, &c.StreamReplicas, "GREENROOM_STREAM_REPLICAS", 1, "replicas of the GREENROOM stream (3 in a NATS cluster)")
	Duration(fs, &c.ShutdownTimeout, "GREENROOM_SHUTDOWN_TIMEOUT", 20*time.Second, "how long graceful shutdown may take")
}

// Usage returns a flag.Usage that prints a description before the flags.
func Usage(fs *flag.FlagSet, name, description string) func() {
	return func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: %s [flags]\n\n%s\n\nFlags (each also read from the environment variable shown):\n", name, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
}
