// Package app is what the config service does, one file per resource:
// validate a request, apply the rules that need the database (references
// by name, the $request_host$ rule, what still refers to what), write the
// change, and announce it on greenroom.config.changed.<kind> through the
// outbox in the same transaction, so a change and its announcement never
// diverge. Session requests go to the bus through libs/client.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/services/config/adapters"
)

// SessionRequester publishes session requests and waits for their outcome
// (a *client.Client).
type SessionRequester interface {
	Publish(ctx context.Context, r client.Request) (requestID string, duplicate bool, err error)
	Request(ctx context.Context, r client.Request) (client.Session, error)
	Await(ctx context.Context, requestID string, lookback time.Duration) (client.Session, error)
}

// Gauge counts things in progress (a prometheus.Gauge).
type Gauge interface {
	Inc()
	Dec()
}

// Config is what an App needs.
type Config struct {
	// DB is the config service's database.
	DB *sqlx.DB
	// Source is the CloudEvents source of its events ("greenroom/config").
	Source string
	// Requests publishes session requests and waits for their outcome.
	Requests SessionRequester
	// Stopping ends every session wait in progress when it is done, so that
	// waiting clients are answered 202 instead of cut off at shutdown.
	Stopping context.Context
	// Waiting counts the session requests waiting for their outcome.
	Waiting Gauge
}

// App runs the config service's use cases.
type App struct {
	db       *sqlx.DB
	source   string
	requests SessionRequester
	stopping context.Context
	waiting  Gauge
}

// New returns an App.
func New(cfg Config) *App {
	return &App{db: cfg.DB, source: cfg.Source, requests: cfg.Requests, stopping: cfg.Stopping, waiting: cfg.Waiting}
}

// Kinds of configuration announced on greenroom.config.changed.<kind>.
const (
	KindZone            = "zone"
	KindPool            = "pool"
	KindAgent           = "agent"
	KindServer          = "server"
	KindWorkspace       = "workspace"
	KindGroup           = "group"
	KindUser            = "user"
	KindStagingConfig   = "staging_config"
	KindWebFilterPolicy = "web_filter_policy"
)

// What happened to a configuration object.
const (
	OpCreated = "created"
	OpUpdated = "updated"
	OpDeleted = "deleted"
)

// change runs fn in a transaction, and announces in that transaction the
// change fn reports: greenroom.config.changed.<kind> with op, the object's
// id and name.
func (a *App) change(ctx context.Context, kind, op string, fn func(tx *sqlx.Tx) (id, name string, err error)) error {
	return db.InTx(ctx, a.db, func(tx *sqlx.Tx) error {
		id, name, err := fn(tx)
		if err != nil {
			return err
		}
		return a.announce(ctx, tx, kind, op, id, name)
	})
}

// announce writes greenroom.config.changed.<kind> into the outbox of tx:
// for the change itself (change does), and for objects a change also
// changed (the workspaces of an edited web filter policy).
func (a *App) announce(ctx context.Context, tx *sqlx.Tx, kind, op, id, name string) error {
	_, err := outbox.Emit(ctx, tx, a.source, events.Subject(events.TypeConfigChanged, kind), events.TypeConfigChanged,
		events.ConfigChanged{Kind: kind, Op: op, ID: id, Name: name}, "")
	return err
}

// snapshot runs the reads of fn in one read-only transaction that sees the
// database as of its first statement, so that what they return together
// (a pool and its members) is consistent.
func (a *App) snapshot(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := a.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("beginning a read-only transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// explain turns the database's refusals of a change to the object called
// noun (`zone "eu"`) into the errors the API answers; other errors pass.
func explain(err error, noun string) error {
	var pqErr *pq.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*Error)):
		return err
	case db.IsUniqueViolation(err):
		return conflict("%s already exists", noun)
	case db.IsForeignKeyViolation(err) && errors.As(err, &pqErr):
		return conflict("%s is still referred to by %s", noun, referrers(pqErr.Table))
	case errors.As(err, &pqErr) && (pqErr.Code.Class() == "22" || pqErr.Code == "23514"):
		// A data exception or a CHECK the validation did not foresee.
		return &Error{Kind: Invalid, Detail: "the database refused a value: " + pqErr.Message}
	}
	return err
}

// referrers names, for an operator, the rows of table that refer to
// something being deleted.
func referrers(table string) string {
	switch table {
	case "staging_configs":
		return "staging configs"
	case "sessions":
		return "sessions (destroyed ones too: they are kept as history)"
	case "groups", "workspaces":
		return table
	case "":
		return "other objects"
	}
	return table
}

// notFoundOr turns adapters.ErrNotFound into a 404 naming what the path
// named; other errors pass.
func notFoundOr(err error, format string, args ...any) error {
	if errors.Is(err, adapters.ErrNotFound) {
		return &Error{Kind: NotFound, Detail: fmt.Sprintf(format, args...)}
	}
	return err
}
