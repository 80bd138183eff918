// Package app is what the config service does, one file per resource:
// validate a request, apply the rules that need the database (references
// by name, the $request_host$ rule, what still refers to what), write the
// change, and announce it on greenroom.config.changed.<kind> through the
// outbox in the same transaction, so a change and its announcement never
// diverge, with who made it (actor.go: the bearer of the request, put in
// its context by package ports) and the object as its GET shows it before
// and after (view.go). Session requests go to the bus through libs/client;
// a user's sign-in is checked against a session in session_auth.go; the
// API keys of internal services are issued and checked in api_keys.go. The
// database is reached only through the interfaces of store.go (Store, Tx,
// one per table), which package adapters implements.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/client"
	"github.com/greenroom-dev/greenroom/libs/events"
)

// ErrNotAccepted wraps a SessionRequester's error when the request was not
// accepted: nothing was sent, and sending it again cannot make a second
// session.
var ErrNotAccepted = errors.New("the session request was not accepted")

// SessionRequester sends session requests and waits for their outcome
// (adapters.Requests, durable through the outbox; or a *client.Client).
// A request Publish or Request accepted is served even if the bus is down
// meanwhile; an error wrapping ErrNotAccepted means it was not accepted.
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
	// Store is the config service's database.
	Store Store
	// Source is the CloudEvents source of its events ("greenroom/config").
	Source string
	// Requests publishes session requests and waits for their outcome.
	Requests SessionRequester
	// Stopping ends every session wait in progress when it is done, so that
	// waiting clients are answered 202 instead of cut off at shutdown.
	Stopping context.Context
	// Waiting counts the session requests waiting for their outcome.
	Waiting Gauge
	// HashPassword returns the hash of a user's password to store
	// (libs/signin.HashPassword); its error says why the password is
	// refused.
	HashPassword func(password string) (hash string, err error)
}

// App runs the config service's use cases.
type App struct {
	store        Store
	source       string
	requests     SessionRequester
	stopping     context.Context
	waiting      Gauge
	hashPassword func(password string) (string, error)
}

// New returns an App.
func New(cfg Config) *App {
	return &App{store: cfg.Store, source: cfg.Source, requests: cfg.Requests, stopping: cfg.Stopping, waiting: cfg.Waiting,
		hashPassword: cfg.HashPassword}
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
	KindAPIKey          = "api_key"
	KindVMProvider      = "vm_provider"
	KindDNSProvider     = "dns_provider"
	KindAutoscaleConfig = "autoscale_config"
)

// What happened to a configuration object.
const (
	OpCreated = "created"
	OpUpdated = "updated"
	OpDeleted = "deleted"
)

// change runs fn in a transaction, and announces in that transaction the
// change fn reports: greenroom.config.changed.<kind> with op, the object's
// id and name, who made it (the actor of ctx), and the object as its GET
// shows it (view) before fn and after. key names the object as its GET's
// path does (a name, a username, a staging config's id); it is unused on
// OpCreated, which has no before, as OpDeleted has no after.
func (a *App) change(ctx context.Context, kind, op, key string, fn func(tx Tx) (id, name string, err error)) error {
	return a.store.InTx(ctx, func(tx Tx) error {
		var before json.RawMessage
		if op != OpCreated {
			// Read FOR UPDATE, the lock fn takes first: no change can
			// come between this read and fn's. An object that is not
			// there is fn's to answer for (404, in its words).
			var err error
			if before, err = view(ctx, tx, kind, key, ForUpdate); err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("reading %s %q before its change: %w", kind, key, err)
			}
		}
		id, name, err := fn(tx)
		if err != nil {
			return err
		}
		if op != OpCreated && before == nil {
			return fmt.Errorf("%s %q was %s, but it was not there before", kind, key, op)
		}
		var after json.RawMessage
		if op != OpDeleted {
			if after, err = view(ctx, tx, kind, viewKey(kind, id, name), NoLock); err != nil {
				return fmt.Errorf("reading %s %s after its change: %w", kind, id, err)
			}
		}
		return a.announce(ctx, tx, events.ConfigChanged{Kind: kind, Op: op, ID: id, Name: name, Before: before, After: after})
	})
}

// announce writes greenroom.config.changed.<kind> into the outbox of tx,
// for the change itself (change does), and for objects a change also
// changed (the workspaces of an edited web filter policy): c, made by the
// actor of ctx, its before and after redacted (events.RedactSecrets) as a
// safety net under the API's views, which show no secret.
func (a *App) announce(ctx context.Context, tx Tx, c events.ConfigChanged) error {
	c.Actor = actorOf(ctx)
	c.Before, c.After = events.RedactSecrets(c.Before), events.RedactSecrets(c.After)
	return a.emit(ctx, tx, events.Subject(events.TypeConfigChanged, c.Kind), events.TypeConfigChanged, c, "")
}

// emit writes an event of this service into the outbox of tx.
func (a *App) emit(ctx context.Context, tx Tx, subject, eventType string, data any, requestID string) error {
	ev, err := events.New(a.source, eventType, data)
	if err != nil {
		return err
	}
	return tx.Enqueue(ctx, subject, ev, requestID)
}

// explain turns the database's refusals of a change to the object called
// noun (`zone "eu"`) into the errors the API answers; other errors pass.
func explain(err error, noun string) error {
	var refused *RefusedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*Error)):
		return err
	case !errors.As(err, &refused):
		return err
	case refused.Refusal == RefusedDuplicate:
		return conflict("%s already exists", noun)
	case refused.Refusal == RefusedReferenced:
		return conflict("%s is still referred to by %s", noun, referrers(refused.Table))
	case refused.Refusal == RefusedValue:
		return &Error{Kind: Invalid, Detail: "the database refused a value: " + refused.Message}
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
	case "groups", "workspaces", "agents":
		return table
	case "autoscale_configs":
		return "autoscale configs"
	case "":
		return "other objects"
	}
	return table
}

// notFoundOr turns ErrNotFound into a 404 naming what the path
// named; other errors pass.
func notFoundOr(err error, format string, args ...any) error {
	if errors.Is(err, ErrNotFound) {
		return &Error{Kind: NotFound, Detail: fmt.Sprintf(format, args...)}
	}
	return err
}
