package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natsauth"
)

func newNatsUsersCommand() *cobra.Command {
	var dir, host string
	var requesters []string
	var env bool
	cmd := &cobra.Command{
		Use:   "nats-users",
		Short: "Write the NATS users of a deployment: one per service and requester, with their permissions",
		Long: `Write the users of a deployment's nats-server into --dir: a password per
user (DIR/<user>, mode 600; one made now only when the file is missing, so
running it again keeps them), DIR/auth.conf, the authorization block of the
nats-server configuration (bcrypt hashes, no passwords), and
DIR/nats-server.conf, deploy/nats-server/nats-server.conf with auth.conf
included, to start nats-server with (-c).

The users (libs/natsauth): one per service (config, assigner, provisioner,
expiry, gateway), each allowed to publish only the events it produces and
to read only its own consumer and replies; "admin" for operators (greenroom
migrate, audit, request) with every subject; and one per --requester, a
service that asks for sessions: it may publish only on
greenroom.session.requested.<name> and read only its own outcomes on
greenroom.session.ready.<name> and greenroom.session.failed.<name>.

With --env it prints, for a shell to eval, each user's URL as
GREENROOM_NATS_URL_<USER> (nats://user:password@--host): what
docker-compose.yml passes to each service.`,
		Example: `  greenroom nats-users --dir .run/nats-users --requester billing
  nats-server -c .run/nats-users/nats-server.conf -js
  eval "$(greenroom nats-users --dir .run/nats-users --env)"; docker-compose up -d`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, r := range requesters {
				if !events.ValidRequester(r) || slices.Contains(natsauth.Services, r) || r == natsauth.Admin {
					return usageError{fmt.Errorf("--requester %q: a name of letters, digits, '-' and '_', not a service's nor %q", r, natsauth.Admin)}
				}
			}
			users := append(append([]string{natsauth.Admin}, natsauth.Services...), requesters...)
			// Requesters named before (a password file there) stay.
			if entries, err := os.ReadDir(dir); err == nil {
				for _, e := range entries {
					if n := e.Name(); !e.IsDir() && events.ValidRequester(n) && !slices.Contains(users, n) {
						users = append(users, n)
					}
				}
			}
			passwords, err := ensurePasswords(dir, users)
			if err != nil {
				return err
			}
			if env {
				out := cmd.OutOrStdout()
				for _, u := range slices.Sorted(maps.Keys(passwords)) {
					fmt.Fprintf(out, "export GREENROOM_NATS_URL_%s='nats://%s:%s@%s'\n",
						strings.ToUpper(strings.ReplaceAll(u, "-", "_")), u, passwords[u], host)
				}
				return nil
			}
			auth, err := natsauth.Conf(passwords)
			if err != nil {
				return err
			}
			if err := writePrivate(filepath.Join(dir, "auth.conf"), auth); err != nil {
				return err
			}
			base, err := os.ReadFile(baseNatsConf)
			if err != nil {
				return fmt.Errorf("%w (run it from the repository root)", err)
			}
			conf := string(base) + "\n# The deployment's users (greenroom nats-users).\ninclude \"auth.conf\"\n"
			if err := writePrivate(filepath.Join(dir, "nats-server.conf"), conf); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s for %d users: %s\n",
				filepath.Join(dir, "nats-server.conf"), filepath.Join(dir, "auth.conf"), len(passwords),
				strings.Join(slices.Sorted(maps.Keys(passwords)), ", "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", ".run/nats-users", "directory of the passwords and the generated configuration")
	f.StringSliceVar(&requesters, "requester", nil, "a requesting service's user to add (repeat, or comma-separated)")
	f.BoolVar(&env, "env", false, "print each user's URL as export GREENROOM_NATS_URL_<USER>=… instead")
	f.StringVar(&host, "host", "127.0.0.1:4222", "host:port of the server, for --env")
	return cmd
}

// baseNatsConf is the settings every deployment's nats-server has.
const baseNatsConf = "deploy/nats-server/nats-server.conf"

// ensurePasswords reads each user's password from dir, making one (24
// random characters) where there is none.
func ensurePasswords(dir string, users []string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(users))
	for _, u := range users {
		path := filepath.Join(dir, u)
		b, err := os.ReadFile(path)
		switch {
		case err == nil && strings.TrimSpace(string(b)) != "":
			out[u] = strings.TrimSpace(string(b))
			continue
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
		out[u] = rand.Text()
		if err := writePrivate(path, out[u]+"\n"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func writePrivate(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}
