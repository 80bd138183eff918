// Package db opens Greenroom's PostgreSQL database, applies the embedded
// migrations of schemas/db, and holds the few helpers every service uses
// around transactions and errors.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	neturl "net/url"
	"os"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"

	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/schemas"
)

// MaxOpenConns bounds each service replica's connections to PostgreSQL.
const MaxOpenConns = 20

// Open connects to url and waits (with backoff, up to ctx or connectTimeout)
// until the server answers, so services can start before PostgreSQL does.
//
// TLS is the URL's, as lib/pq reads it (libpq's parameters): sslmode
// (verify-full checks the server's certificate and name), sslrootcert
// (the CA), sslcert and sslkey (the client certificate, for a server
// whose pg_hba.conf says `cert` or clientcert=verify-full). A file it
// names that cannot be read is an error at once. The outbox relay's
// LISTEN connection (libs/outbox) uses the same URL.
//
// Connections use lib/pq's binary_parameters mode: a query with parameters
// costs one round trip instead of two (no separate prepare). In that mode
// a []byte argument is sent as binary data, so JSON for a json or jsonb
// column must be passed as a string.
func Open(ctx context.Context, url string, connectTimeout time.Duration) (*sqlx.DB, error) {
	cfg, err := pq.NewConfig(url)
	if err != nil {
		// A URL's parse error quotes the URL, password and all: keep only
		// what is wrong with it.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("parsing database URL %s: %v", settings.Redact(url), err)
	}
	if err := checkTLSFiles(cfg); err != nil {
		return nil, fmt.Errorf("database URL %s: %w", settings.Redact(url), err)
	}
	cfg.BinaryParameters = true
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	conn := sqlx.NewDb(sql.OpenDB(connector), "postgres")
	// Busy connections go back to the pool rather than being closed: with
	// fewer idle than open, every burst above the idle count would close
	// connections and open new ones, each a new PostgreSQL backend
	// process. Idle ones are closed after a while instead.
	conn.SetMaxOpenConns(MaxOpenConns)
	conn.SetMaxIdleConns(MaxOpenConns)
	conn.SetConnMaxIdleTime(5 * time.Minute)
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return struct{}{}, conn.PingContext(pctx)
	}, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(connectTimeout))
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	return conn, nil
}

// checkTLSFiles fails when a file the URL names for TLS (sslrootcert,
// sslcert, sslkey) cannot be read. lib/pq, like libpq, goes on without a
// client certificate whose file is missing, and the server's refusal would
// not say why; and Open would retry a missing CA until its timeout.
func checkTLSFiles(cfg pq.Config) error {
	if cfg.SSLInline {
		return nil
	}
	for _, f := range []struct{ param, path string }{
		{"sslrootcert", cfg.SSLRootCert}, {"sslcert", cfg.SSLCert}, {"sslkey", cfg.SSLKey},
	} {
		if f.path == "" || (f.param == "sslrootcert" && f.path == "system") {
			continue
		}
		file, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.param, err)
		}
		_ = file.Close()
	}
	return nil
}

// Migrate applies every pending migration. Concurrent callers are safe:
// goose takes a session advisory lock.
func Migrate(ctx context.Context, conn *sql.DB) ([]string, error) {
	fsys, err := fs.Sub(schemas.Migrations, "db")
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations: %w", err)
	}
	locker, err := lockerFor()
	if err != nil {
		return nil, err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, conn, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("loading migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("applying migrations: %w", err)
	}
	applied := make([]string, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}

// InTx runs fn in a transaction, committing when it returns nil.
func InTx(ctx context.Context, conn *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally of the named constraint.
func IsUniqueViolation(err error, constraint ...string) bool {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "23505" {
		return false
	}
	if len(constraint) == 0 {
		return true
	}
	for _, c := range constraint {
		if pqErr.Constraint == c {
			return true
		}
	}
	return false
}

// IsForeignKeyViolation reports whether err is a foreign-key violation.
func IsForeignKeyViolation(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23503"
}

// IsNotFound reports whether err means a single-row query found no row.
func IsNotFound(err error) bool { return errors.Is(err, sql.ErrNoRows) }
