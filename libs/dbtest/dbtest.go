// Package dbtest gives each test its own freshly migrated PostgreSQL
// database on the server named by GREENROOM_TEST_DATABASE_URL, and drops it
// afterwards. A missing server fails the test: tests never skip silently.
package dbtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/libs/db"
)

// DefaultURL is used when GREENROOM_TEST_DATABASE_URL is unset; it matches
// what scripts/ensure-postgres.sh creates.
const DefaultURL = "postgres://greenroom:greenroom@127.0.0.1:5432/greenroom?sslmode=disable"

// AdminURL returns the URL of the server's maintenance database.
func AdminURL() string {
	if u := os.Getenv("GREENROOM_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
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
