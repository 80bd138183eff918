// Package dbtest gives each test its own freshly migrated PostgreSQL
// database on the server named by GREENROOM_TEST_DATABASE_URL (else the
// local one of scripts/ensure-postgres.sh, whose URL with its generated
// password is in .run/database-url), and drops it afterwards. The role
// needs CREATEDB, not SUPERUSER. A missing server fails the test: tests
// never skip silently.
package dbtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/settings"
)

// DefaultURL is used when GREENROOM_TEST_DATABASE_URL is unset and no
// .run/database-url is found: the local role without its password, which
// a ~/.pgpass may give.
const DefaultURL = settings.DatabaseURLDefault

// AdminURL returns the URL of the server's maintenance database:
// GREENROOM_TEST_DATABASE_URL, else the one scripts/ensure-postgres.sh
// wrote to .run/database-url in the repository the test runs in (found
// from the working directory upwards), else DefaultURL.
func AdminURL() string {
	if u := os.Getenv("GREENROOM_TEST_DATABASE_URL"); u != "" {
		return u
	}
	if u := localURL(); u != "" {
		return u
	}
	return DefaultURL
}

// localURL reads .run/database-url in the nearest directory, from the
// working directory up, that has one.
func localURL() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, settings.LocalDatabaseURLFile)); err == nil {
			if u := strings.TrimSpace(string(b)); u != "" {
				return u
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// New creates a database for t, migrates it and returns a connection and its
// URL. The database is dropped when the test ends.
func New(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	admin, err := db.Open(ctx, AdminURL(), 10*time.Second)
	if err != nil {
		t.Fatalf("dbtest: PostgreSQL is required (run scripts/ensure-postgres.sh or set GREENROOM_TEST_DATABASE_URL): %v", err)
	}
	name := "greenroom_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		_ = admin.Close()
		t.Fatalf("dbtest: creating database: %v", err)
	}
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatalf("dbtest: parsing url: %v", err)
	}
	u.Path = "/" + name
	conn, err := db.Open(ctx, u.String(), 10*time.Second)
	if err != nil {
		t.Fatalf("dbtest: connecting to %s: %v", name, err)
	}
	if _, err := db.Migrate(ctx, conn.DB); err != nil {
		t.Fatalf("dbtest: migrating: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Logf("dbtest: dropping %s: %v", name, err)
		}
		_ = admin.Close()
	})
	return conn, u.String()
}
