package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/natstest"
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
	natsURL := natstest.Start(t).ClientURL()
	out, errOut, code := runCLI(t, map[string]string{"GREENROOM_DATABASE_URL": dbURL, "GREENROOM_NATS_URL": natsURL}, "migrate")
	if code != exitOK || !strings.Contains(out, "applied 00001_core.sql\n") {
		t.Fatalf("first run: exit %d, %s\n%s", code, errOut, out)
	}
	out, errOut, code = runCLI(t, nil, "--database-url", dbURL, "--nats-url", natsURL, "migrate")
	if code != exitOK || !strings.HasPrefix(out, "database is up to date: no pending migrations\nstream GREENROOM is up to date") {
		t.Fatalf("second run: exit %d, %s\n%s", code, errOut, out)
	}
}

// TestMigrateSetsTheStreamLimits: the stream's limits are migrate's
// settings (services never change them): created with them, updated when
// they change, and a malformed value is refused naming its variable.
func TestMigrateSetsTheStreamLimits(t *testing.T) {
	dbURL := emptyDatabase(t)
	srv, nc := natstest.Connect(t)
	env := map[string]string{"GREENROOM_DATABASE_URL": dbURL, "GREENROOM_NATS_URL": srv.ClientURL(),
		"GREENROOM_STREAM_MAX_AGE": "2d"}
	out, errOut, code := runCLI(t, env, "migrate")
	if code != exitOK || !strings.Contains(out, "stream GREENROOM created: max age 2d, max bytes unlimited, duplicate window 2m0s, replicas 1; deletes and purges denied\n") {
		t.Fatalf("first run: exit %d, %s\n%s", code, errOut, out)
	}
	env["GREENROOM_STREAM_MAX_BYTES"] = "20GB"
	out, errOut, code = runCLI(t, env, "migrate", "--stream-max-age", "72h", "--stream-duplicates", "5m")
	if code != exitOK || !strings.Contains(out, "stream GREENROOM updated: max_age 48h0m0s → 72h0m0s, duplicates 2m0s → 5m0s, max_bytes unlimited → 20GB\n") {
		t.Fatalf("second run: exit %d, %s\n%s", code, errOut, out)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.MaxAge != 72*time.Hour || c.Duplicates != 5*time.Minute || c.MaxBytes != 20_000_000_000 || !c.DenyDelete || !c.DenyPurge {
		t.Fatalf("stream config %s, %s, %d bytes, deny delete %v, purge %v", c.MaxAge, c.Duplicates, c.MaxBytes, c.DenyDelete, c.DenyPurge)
	}
	env["GREENROOM_STREAM_MAX_BYTES"] = "plenty"
	if _, errOut, code = runCLI(t, env, "migrate"); code != exitUsage || !strings.Contains(errOut, "GREENROOM_STREAM_MAX_BYTES") {
		t.Fatalf("malformed max bytes: exit %d, %q", code, errOut)
	}
	delete(env, "GREENROOM_STREAM_MAX_BYTES")
	env["GREENROOM_STREAM_MAX_AGE"] = "a month"
	_, errOut, code = runCLI(t, env, "migrate")
	if code != exitUsage || !strings.Contains(errOut, "GREENROOM_STREAM_MAX_AGE") {
		t.Fatalf("malformed max age: exit %d, %q", code, errOut)
	}
}

func TestMigrateWithoutDatabaseSaysWhatToDo(t *testing.T) {
	_, errOut, code := runCLI(t, nil, "--database-url", "postgres://greenroom@127.0.0.1:1/greenroom?sslmode=disable",
		"migrate", "--wait", "200ms")
	if code != exitFailure || !strings.Contains(errOut, "scripts/ensure-postgres.sh") {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}
