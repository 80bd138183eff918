package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
)

// emptyDatabase creates an unmigrated database on the test server and
// returns its URL; it is dropped when the test ends.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := db.Open(ctx, dbtest.AdminURL(), 10*time.Second)
	if err != nil {
		t.Fatalf("PostgreSQL is required (scripts/ensure-postgres.sh): %v", err)
	}
	name := "greenroom_cli_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = admin.Close()
	})
	u, err := url.Parse(dbtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestMigrateAppliesPendingMigrationsOnce(t *testing.T) {
	dbURL := emptyDatabase(t)
	out, errOut, code := runCLI(t, map[string]string{"GREENROOM_DATABASE_URL": dbURL}, "migrate")
	if code != exitOK || !strings.Contains(out, "applied 00001_core.sql\n") {
		t.Fatalf("first run: exit %d, %s\n%s", code, errOut, out)
	}
	out, errOut, code = runCLI(t, nil, "--database-url", dbURL, "migrate")
	if code != exitOK || out != "database is up to date: no pending migrations\n" {
		t.Fatalf("second run: exit %d, %s\n%s", code, errOut, out)
	}
}

func TestMigrateWithoutDatabaseSaysWhatToDo(t *testing.T) {
	_, errOut, code := runCLI(t, nil, "--database-url", "postgres://greenroom:greenroom@127.0.0.1:1/greenroom?sslmode=disable",
		"migrate", "--wait", "200ms")
	if code != exitFailure || !strings.Contains(errOut, "scripts/ensure-postgres.sh") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}
