// Package settings reads the configuration every Greenroom service shares.
// Each setting is an environment variable (GREENROOM_*) with a flag of the
// same name in kebab case (GREENROOM_DATABASE_URL ↔ --database-url); the
// flag wins over the variable, and the defaults work for `make up`. Parse
// (peterbourgon/ff) fails on a malformed value, naming it; --help shows
// the built-in defaults, never a secret from the environment.
package settings

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
)

// Defaults that match the local deployment of `make up`. The local
// database role has no well-known password: scripts/ensure-postgres.sh
// generates one and writes the whole URL to LocalDatabaseURLFile, which
// `make up` passes to the services as GREENROOM_DATABASE_URL and the CLI
// reads when no URL is given (LocalDatabaseURL).
const (
	DatabaseURLDefault = "postgres://greenroom@127.0.0.1:5432/greenroom?sslmode=disable"
	NatsURLDefault     = "nats://127.0.0.1:4222"
	HTTPAddrDefault    = "127.0.0.1:8080"
	LogLevelDefault    = "info"
)

// LocalDatabaseURLFile is where scripts/ensure-postgres.sh writes the URL
// of the local database (mode 600), relative to the repository root.
const LocalDatabaseURLFile = ".run/database-url"

// LocalDatabaseURL returns the URL in LocalDatabaseURLFile (relative to
// the working directory) when it can be read, else def.
func LocalDatabaseURL(def string) string { return localURL(LocalDatabaseURLFile, def) }

// LocalNatsURLFile is where `make up` writes the URL of the local
// nats-server as the operators' user, password included (mode 600),
// relative to the repository root: the CLI reads it when no URL is given
// (LocalNatsURL), since the server lets in only the users of
// `greenroom nats-users`.
const LocalNatsURLFile = ".run/nats-url"

// LocalNatsURL returns the URL in LocalNatsURLFile (relative to the
// working directory) when it can be read, else def.
func LocalNatsURL(def string) string { return localURL(LocalNatsURLFile, def) }

// localURL returns the URL in file (a local deployment's, written by make
// up) when it can be read and is not empty, else def.
func localURL(file, def string) string {
	b, err := os.ReadFile(file)
	if u := strings.TrimSpace(string(b)); err == nil && u != "" {
		return u
	}
	return def
}

// Common holds the settings of DESIGN.md's "Configuration".
type Common struct {
	DatabaseURL string
	NatsURL     string
	// NatsTLS are the CA and client certificate of TLS to NATS.
	NatsTLS    NatsTLS
	HTTPAddr   string
	AdminToken string
	LogLevel   string
	// StreamReplicas is 1 locally, 3 in a NATS cluster: used only when
	// the stream does not exist yet (greenroom migrate sets its limits).
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

// The flags are registered with their built-in defaults, never with the
// environment's values: --help shows the defaults, so a secret set in the
// environment never reaches it. Parse reads the environment.

// String registers a string setting read from env and its flag.
func String(fs *flag.FlagSet, p *string, env, def, usage string) {
	fs.StringVar(p, FlagName(env), def, fmt.Sprintf("%s (env %s)", usage, env))
}

// Bool registers a true/false setting read from env and its flag.
func Bool(fs *flag.FlagSet, p *bool, env string, def bool, usage string) {
	fs.BoolVar(p, FlagName(env), def, fmt.Sprintf("%s (env %s)", usage, env))
}

// Secret registers a setting whose value is never shown: --help shows no
// default, and the value is only in *p.
func Secret(fs *flag.FlagSet, p *string, env, usage string) {
	fs.Var((*secretValue)(p), FlagName(env), fmt.Sprintf("%s (env %s; never shown)", usage, env))
}

// URL registers a URL setting whose password, if any, --help shows as
// "xxxxx".
func URL(fs *flag.FlagSet, p *string, env, def, usage string) {
	*p = def
	fs.Var((*RedactedURL)(p), FlagName(env), fmt.Sprintf("%s (env %s)", usage, env))
}

// WebURL registers the http(s) URL setting of a place users' browsers go
// to; a value that is not one is a start-up error naming env.
func WebURL(fs *flag.FlagSet, p **url.URL, env, def, usage string) {
	v := &webURLValue{p: p}
	if err := v.Set(def); err != nil {
		panic(fmt.Sprintf("settings: default of %s: %v", env, err))
	}
	fs.Var(v, FlagName(env), fmt.Sprintf("%s (env %s)", usage, env))
}

type webURLValue struct{ p **url.URL }

func (v *webURLValue) Set(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL with a host", s)
	}
	*v.p = u
	return nil
}

func (v *webURLValue) String() string {
	if v == nil || v.p == nil || *v.p == nil {
		return ""
	}
	return (*v.p).String()
}

// Duration registers a duration setting read from env and its flag.
func Duration(fs *flag.FlagSet, p *time.Duration, env string, def time.Duration, usage string) {
	fs.DurationVar(p, FlagName(env), def, fmt.Sprintf("%s (env %s)", usage, env))
}

// Int registers an integer setting read from env and its flag.
func Int(fs *flag.FlagSet, p *int, env string, def int, usage string) {
	fs.IntVar(p, FlagName(env), def, fmt.Sprintf("%s (env %s)", usage, env))
}

// Parse reads the flags from args and, for each flag not given there, its
// GREENROOM_* environment variable (peterbourgon/ff). A malformed value is
// an error naming the variable or the flag, never silently replaced by the
// default.
func Parse(fs *flag.FlagSet, args []string) error {
	return ff.Parse(fs, args, ff.WithEnvVarPrefix("GREENROOM"))
}

// secretValue is a string flag.Value that never shows its value.
type secretValue string

func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }
func (v *secretValue) String() string     { return "" }

// RedactedURL is a URL flag's value (a flag.Value, and a pflag.Value for
// cobra commands) that shows the URL without its password, so that --help
// never prints one.
type RedactedURL string

func (v *RedactedURL) Set(s string) error { *v = RedactedURL(s); return nil }
func (v *RedactedURL) Type() string       { return "url" }
func (v *RedactedURL) String() string {
	if v == nil {
		return ""
	}
	return Redact(string(*v))
}

// EnvName is FlagName's inverse: database-url → GREENROOM_DATABASE_URL.
func EnvName(flag string) string {
	return "GREENROOM_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// FromEnv is Parse's environment step for commands whose flags another
// library parses (cobra): each of vars, by flag name, that the command
// line did not give (changed reports it) takes its GREENROOM_* variable
// when that is set. Their flags are registered with built-in defaults, so
// --help never shows a value from the environment.
func FromEnv(getenv func(string) string, changed func(flag string) bool, vars map[string]*string) {
	for name, p := range vars {
		if v := getenv(EnvName(name)); v != "" && !changed(name) {
			*p = v
		}
	}
}

// Redact returns u with its password, if any, replaced by "xxxxx"; a
// value that is not a URL is returned as "[redacted]", in case it holds
// a password in another form.
func Redact(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return "[redacted]"
	}
	return parsed.Redacted()
}

// Register adds the common settings to fs. httpAddrDefault differs per
// service so that all four can run on one machine.
func (c *Common) Register(fs *flag.FlagSet, httpAddrDefault string) {
	c.RegisterAs(fs, "GREENROOM_HTTP_ADDR", httpAddrDefault, "address of the HTTP server (health, readiness, metrics)")
}

// RegisterAs is Register for a service whose HTTP address has a variable
// of its own (the gateway's GREENROOM_GATEWAY_ADDR).
func (c *Common) RegisterAs(fs *flag.FlagSet, httpAddrEnv, httpAddrDefault, httpAddrUsage string) {
	URL(fs, &c.DatabaseURL, "GREENROOM_DATABASE_URL", DatabaseURLDefault, "PostgreSQL connection URL")
	String(fs, &c.NatsURL, "GREENROOM_NATS_URL", NatsURLDefault, "NATS server URL(s), comma-separated")
	c.NatsTLS.Register(fs)
	String(fs, &c.HTTPAddr, httpAddrEnv, httpAddrDefault, httpAddrUsage)
	Secret(fs, &c.AdminToken, "GREENROOM_ADMIN_TOKEN", "bearer token of the admin API")
	String(fs, &c.LogLevel, "GREENROOM_LOG_LEVEL", LogLevelDefault, "log level: debug, info, warn, error")
	Int(fs, &c.StreamReplicas, "GREENROOM_STREAM_REPLICAS", 1, "replicas of the GREENROOM stream if this service has to create it (greenroom migrate sets the limits of an existing one; 3 in a NATS cluster)")
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
