package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
)

// TestMakeDownRemovesOnlyThisDeploymentsContainers runs scripts/down.sh
// (what `make down` runs), with a run directory of its own, on an engine
// that also holds another deployment's container and a managed container
// without a deployment: only this deployment's go, its id read from its
// database, else from .run/deployment-id.
func TestMakeDownRemovesOnlyThisDeploymentsContainers(t *testing.T) {
	conn, dbURL := dbtest.New(t)
	var ours string
	if err := conn.Get(&ours, `SELECT id FROM deployment`); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		// dbURL is the deployment's database; when it does not answer, the
		// id comes from the file.
		dbURL, file string
	}{
		{"id from the database", dbURL, ""},
		{"id from .run/deployment-id", "postgres://greenroom@127.0.0.1:1/none?sslmode=disable", ours},
	} {
		t.Run(tt.name, func(t *testing.T) {
			create := func(labels ...string) string {
				args := []string{"create", "--label", "greenroom.managed=true"}
				for _, l := range labels {
					args = append(args, "--label", l)
				}
				out, err := exec.Command("docker", append(args, demoImage)...).Output()
				if err != nil {
					t.Fatalf("docker create: %v", err)
				}
				id := strings.TrimSpace(string(out))
				t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", id).Run() })
				return id
			}
			mine := create("greenroom.deployment=" + ours)
			theirs := create("greenroom.deployment=" + uuid.NewString())
			unlabelled := create()

			run := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(run, "deployment-id"), []byte(tt.file+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("bash", "../../scripts/down.sh")
			cmd.Env = append(os.Environ(), "GREENROOM_RUN_DIR="+run, "GREENROOM_DATABASE_URL="+tt.dbURL)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("down.sh: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "removed 1 container(s) of this deployment") {
				t.Errorf("down.sh said:\n%s", out)
			}
			left, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label=greenroom.managed=true").Output()
			if err != nil {
				t.Fatal(err)
			}
			ids := strings.Fields(string(left))
			if slices.Contains(ids, mine) {
				t.Error("this deployment's container is still there")
			}
			if !slices.Contains(ids, theirs) || !slices.Contains(ids, unlabelled) {
				t.Error("down.sh removed a container of another deployment")
			}
		})
	}
}

// TestLocalDatabaseRoleIsNoSuperuserAndHasNoKnownPassword runs
// scripts/ensure-postgres.sh (what make up, make test and .ci/run run; on
// a machine already set up it changes nothing) and checks the role it left:
// LOGIN CREATEDB (tests create their databases) but no superuser, its
// generated password in .run/database-url (mode 600) only, and the
// well-known password of earlier versions refused.
func TestLocalDatabaseRoleIsNoSuperuserAndHasNoKnownPassword(t *testing.T) {
	if os.Getenv("GREENROOM_DATABASE_URL") != "" || os.Getenv("GREENROOM_TEST_DATABASE_URL") != "" {
		t.Skip("GREENROOM_DATABASE_URL / GREENROOM_TEST_DATABASE_URL name another server: ensure-postgres.sh does not manage its role")
	}
	out, err := exec.Command("bash", "../../scripts/ensure-postgres.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("ensure-postgres.sh: %v\n%s", err, out)
	}
	file := "../../.run/database-url"
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", file, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := u.User.Password(); len(pw) < 32 || pw == "greenroom" {
		t.Errorf("the role's password is %d characters long; want a generated one", len(pw))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Open(ctx, u.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	var super, createdb bool
	if err := conn.QueryRowContext(ctx, `SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user`).Scan(&super, &createdb); err != nil {
		t.Fatal(err)
	}
	if super || !createdb {
		t.Errorf("role: superuser %v, createdb %v; want no superuser, createdb", super, createdb)
	}
	legacy := *u
	legacy.User = url.UserPassword(u.User.Username(), "greenroom")
	if c, err := db.Open(ctx, legacy.String(), 500*time.Millisecond); err == nil {
		_ = c.Close()
		t.Error("the role still accepts the well-known password")
	}

	// Another checkout on this machine (a CI copy: no .run/ of its own)
	// reuses the password instead of replacing it under this one.
	other := t.TempDir()
	cmd := exec.Command("bash", "../../scripts/ensure-postgres.sh")
	cmd.Env = append(os.Environ(), "GREENROOM_RUN_DIR="+other)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ensure-postgres.sh in another checkout: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(other, "database-url"))
	if err != nil || strings.TrimSpace(string(got)) != u.String() {
		t.Fatalf("the other checkout's .run/database-url is %q (%v), want this one's", got, err)
	}
	again, err := db.Open(ctx, u.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("this checkout's URL no longer works: %v", err)
	}
	_ = again.Close()
}
