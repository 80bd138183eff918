package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/libs/settings"
)

// APIURLDefault is where `make up` runs the config service's admin API.
const APIURLDefault = "http://127.0.0.1:8080"

// adminTokenFile is where scripts/up.sh keeps the admin token it generated;
// read (relative to the working directory) when no token is given.
const adminTokenFile = ".run/admin-token"

// globalOptions are the connection settings every subcommand shares. Each
// has a flag and an environment variable; the flag wins.
type globalOptions struct {
	NatsURL string
	// NatsTLS are the CA and client certificate of TLS to NATS, the
	// services' settings.
	NatsTLS     settings.NatsTLS
	DatabaseURL string
	APIURL      string
	AdminToken  string
	// getenv is the environment the command runs in.
	getenv func(string) string
}

// token returns the admin token, falling back to the file make up writes.
func (g *globalOptions) token() string {
	if g.AdminToken != "" {
		return g.AdminToken
	}
	if b, err := os.ReadFile(adminTokenFile); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

// connectNATS connects to --nats-url with the TLS settings (the services'
// settings.NatsTLS) and opts.
func (g *globalOptions) connectNATS(opts ...nats.Option) (*nats.Conn, error) {
	tlsOpts, err := g.NatsTLS.ConnectOptions()
	if err != nil {
		return nil, usageError{fmt.Errorf("nats TLS: %w", err)}
	}
	nc, err := nats.Connect(g.NatsURL, append(tlsOpts, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", settings.Redact(g.NatsURL), err)
	}
	return nc, nil
}

func newRootCommand(getenv func(string) string) *cobra.Command {
	g := &globalOptions{getenv: getenv}
	root := &cobra.Command{
		Use:   "greenroom",
		Short: "Operate Greenroom: session staging for container workspaces",
		Long: `greenroom is the operator CLI of Greenroom, which keeps containers staged
(created and running) so that a user who asks for a session gets one in
milliseconds.

Connection settings come from flags or the environment (the flag wins); the
defaults match a local deployment started with 'make up'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	// The flags show their built-in defaults in --help, never a value from
	// the environment (the admin token, a database password); the
	// environment fills what the command line did not give, below.
	pf := root.PersistentFlags()
	pf.StringVar(&g.NatsURL, "nats-url", settings.NatsURLDefault,
		"NATS server URL(s), comma-separated (env GREENROOM_NATS_URL)")
	fromEnv := map[string]*string{"nats-url": &g.NatsURL, "database-url": &g.DatabaseURL,
		"api-url": &g.APIURL, "admin-token": &g.AdminToken}
	g.NatsTLS.Each(func(p *string, env, usage string) {
		pf.StringVar(p, settings.FlagName(env), "", fmt.Sprintf("%s (env %s)", usage, env))
		fromEnv[settings.FlagName(env)] = p
	})
	g.DatabaseURL = settings.DatabaseURLDefault
	pf.Var((*settings.RedactedURL)(&g.DatabaseURL), "database-url",
		"PostgreSQL connection URL (env GREENROOM_DATABASE_URL)")
	pf.StringVar(&g.APIURL, "api-url", APIURLDefault,
		"base URL of the config service's admin API (env GREENROOM_API_URL)")
	pf.StringVar(&g.AdminToken, "admin-token", "",
		"admin API bearer token (env GREENROOM_ADMIN_TOKEN; else read from "+adminTokenFile+", written by make up; never shown)")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		settings.FromEnv(getenv, func(name string) bool {
			f := cmd.Flags().Lookup(name)
			if f == nil {
				f = cmd.PersistentFlags().Lookup(name)
			}
			return f != nil && f.Changed
		}, fromEnv)
		if g.DatabaseURL == settings.DatabaseURLDefault {
			// Given neither way: the local database's URL, with the
			// password scripts/ensure-postgres.sh generated, when there.
			g.DatabaseURL = settings.LocalDatabaseURL(g.DatabaseURL)
		}
		if g.NatsURL == settings.NatsURLDefault {
			// Likewise the local nats-server's, as the operators' user.
			g.NatsURL = settings.LocalNatsURL(g.NatsURL)
		}
	}

	root.AddCommand(
		newMigrateCommand(g),
		newRequestCommand(g),
		newSessionsCommand(g),
		newPoolsCommand(g),
		newAuditCommand(g),
		newApplyCommand(g, getenv),
		newGetCommand(g),
		newDeleteCommand(g),
		newDemoCommand(g),
		newBenchCommand(getenv),
		newNatsUsersCommand(),
	)
	return root
}
