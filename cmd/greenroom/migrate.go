package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/libs/db"
)

func newMigrateCommand(g *globalOptions) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		Long: `Apply every pending migration of schemas/db (embedded in this binary) to the
database of --database-url, and print the files applied. Migrations are
forward-only and versioned; running migrate again applies nothing. Concurrent
runs are safe: they serialise on an advisory lock.`,
		Example: `  greenroom migrate
  GREENROOM_DATABASE_URL=postgres://greenroom:secret@db:5432/greenroom greenroom migrate`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			conn, err := db.Open(ctx, g.DatabaseURL, wait)
			if err != nil {
				return fmt.Errorf("%w (is PostgreSQL running? scripts/ensure-postgres.sh starts a local one)", err)
			}
			defer func() { _ = conn.Close() }()
			applied, err := db.Migrate(ctx, conn.DB)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, f := range applied {
				fmt.Fprintf(out, "applied %s\n", f)
			}
			if len(applied) == 0 {
				fmt.Fprintln(out, "database is up to date: no pending migrations")
			} else {
				fmt.Fprintf(out, "applied %d migration(s)\n", len(applied))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 15*time.Second, "how long to wait for PostgreSQL to answer")
	return cmd
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
