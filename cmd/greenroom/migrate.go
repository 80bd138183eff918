package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/stream"
)

func newMigrateCommand(g *globalOptions) *cobra.Command {
	var wait time.Duration
	var limits stream.Config
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations and the stream's limits",
		Long: `Apply every pending migration of schemas/db (embedded in this binary) to the
database of --database-url, and print the files applied. Migrations are
forward-only and versioned; running migrate again applies nothing. Concurrent
runs are safe: they serialise on an advisory lock.

Then create the GREENROOM stream on --nats-url, or update it, with the limits
given here (how long events are kept, the duplicate window, replicas), and
print what changed. This is the one place they are set: a service at start
only checks that the stream exists (creating it with the defaults when it is
absent) and never changes it, so a replica started with other settings cannot
change the retention of the whole deployment.`,
		Example: `  greenroom migrate
  GREENROOM_STREAM_MAX_AGE=90d greenroom migrate        # keep the audit log 90 days
  GREENROOM_DATABASE_URL=postgres://greenroom:secret@db:5432/greenroom greenroom migrate`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := limitsFromEnv(cmd, g.getenv, &limits); err != nil {
				return err
			}
			if err := limits.Validate(); err != nil {
				return usageError{err}
			}
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
			ch, err := applyStream(ctx, g, wait, limits)
			if err != nil {
				return err
			}
			c := ch.Config
			desc := fmt.Sprintf("max age %s, max bytes %s, duplicate window %s, replicas %d; deletes and purges denied",
				formatAge(c.MaxAge), stream.FormatBytes(c.MaxBytes), c.Duplicates, c.Replicas)
			switch {
			case ch.Created:
				fmt.Fprintf(out, "stream %s created: %s\n", bus.StreamName, desc)
			case len(ch.Changed) > 0:
				fmt.Fprintf(out, "stream %s updated: %s\n", bus.StreamName, strings.Join(ch.Changed, ", "))
			default:
				fmt.Fprintf(out, "stream %s is up to date: %s\n", bus.StreamName, desc)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&wait, "wait", 15*time.Second, "how long to wait for PostgreSQL and NATS to answer")
	f.Var((*ageValue)(&limits.MaxAge), "stream-max-age",
		"how long the GREENROOM stream keeps events, e.g. 30d, 720h (env GREENROOM_STREAM_MAX_AGE; default 30d)")
	f.DurationVar(&limits.Duplicates, "stream-duplicates", bus.StreamDuplicatesDefault,
		"the stream's duplicate window: a repeated Nats-Msg-Id within it is dropped (env GREENROOM_STREAM_DUPLICATES)")
	f.IntVar(&limits.Replicas, "stream-replicas", bus.StreamReplicasDefault,
		"replicas of the stream: 1, or 3 in a NATS cluster (env GREENROOM_STREAM_REPLICAS)")
	f.Var((*bytesValue)(&limits.MaxBytes), "stream-max-bytes",
		"the most disk the GREENROOM stream may take, e.g. 50GB; the oldest events go first past it (env GREENROOM_STREAM_MAX_BYTES; default -1: no bound but the max age)")
	return cmd
}

// limitsFromEnv fills the stream flags the command line did not give from
// their GREENROOM_* variables; a malformed value is an error naming it.
func limitsFromEnv(cmd *cobra.Command, getenv func(string) string, limits *stream.Config) error {
	for _, v := range []struct {
		flag, env string
		set       func(string) error
	}{
		{"stream-max-age", "GREENROOM_STREAM_MAX_AGE", (*ageValue)(&limits.MaxAge).Set},
		{"stream-duplicates", "GREENROOM_STREAM_DUPLICATES", func(s string) (err error) {
			limits.Duplicates, err = time.ParseDuration(s)
			return err
		}},
		{"stream-replicas", "GREENROOM_STREAM_REPLICAS", func(s string) (err error) {
			limits.Replicas, err = strconv.Atoi(s)
			return err
		}},
		{"stream-max-bytes", "GREENROOM_STREAM_MAX_BYTES", (*bytesValue)(&limits.MaxBytes).Set},
	} {
		val := getenv(v.env)
		if val == "" || cmd.Flags().Changed(v.flag) {
			continue
		}
		if err := v.set(val); err != nil {
			return usagef("%s=%q: %v", v.env, val, err)
		}
	}
	return nil
}

// applyStream connects to NATS and applies the stream's limits.
func applyStream(ctx context.Context, g *globalOptions, wait time.Duration, limits stream.Config) (stream.Change, error) {
	natsURL := g.NatsURL
	nc, err := g.connectNATS(nats.Name("greenroom-cli-migrate"), nats.Timeout(natsConnectTimeout),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return stream.Change{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return stream.Change{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, max(wait, 2*time.Second))
	defer cancel()
	for {
		ch, err := stream.Apply(ctx, js, limits)
		if err == nil {
			return ch, nil
		}
		select {
		case <-ctx.Done():
			if last := nc.LastError(); last != nil && !nc.IsConnected() {
				// Refused, not absent: a certificate, say.
				return stream.Change{}, fmt.Errorf("%w; not connected to NATS at %s: %v", err, settings.Redact(natsURL), last)
			}
			return stream.Change{}, fmt.Errorf("%w (is nats-server with JetStream running at %s? scripts/ensure-nats.sh starts a local one)", err, settings.Redact(natsURL))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ageValue is a duration flag that also takes whole days ("30d").
type ageValue time.Duration

func (a *ageValue) String() string { return formatAge(time.Duration(*a)) }
func (a *ageValue) Type() string   { return "duration" }
func (a *ageValue) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a whole number of days", s)
		}
		*a = ageValue(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*a = ageValue(d)
	return nil
}

// formatAge writes whole days as "30d".
func formatAge(d time.Duration) string {
	if d == 0 {
		d = bus.StreamMaxAgeDefault
	}
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// bytesValue is a flag of a stream size (stream.ParseBytes).
type bytesValue int64

func (b *bytesValue) String() string {
	if *b == 0 {
		return "-1"
	}
	return stream.FormatBytes(int64(*b))
}

func (b *bytesValue) Set(s string) error {
	n, err := stream.ParseBytes(s)
	*b = bytesValue(n)
	return err
}

func (*bytesValue) Type() string { return "size" }
