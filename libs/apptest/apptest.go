// Package apptest gives tests a real environment to run Greenroom services
// in: a fresh PostgreSQL database and an embedded JetStream server, and
// app.Deps connected to both — the same wiring the binaries use.
package apptest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/natsauth"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/startstop"
)

// Env is one test's PostgreSQL database and NATS server.
type Env struct {
	DB          *sqlx.DB
	DatabaseURL string
	NATS        *server.Server
	// Passwords are the NATS users' (NewWithUsers); nil when the server
	// has no users.
	Passwords map[string]string
}

// New starts an environment that lives as long as the test.
func New(t testing.TB) *Env {
	t.Helper()
	conn, url := dbtest.New(t)
	return &Env{DB: conn, DatabaseURL: url, NATS: natstest.Start(t)}
}

// NewWithUsers is New with a NATS server that knows only the users of the
// deployment's permission table (natsauth): one per service, admin, and
// the requesting services named, each with a random password. Deps
// connects each service as its own user.
func NewWithUsers(t testing.TB, requesters ...string) *Env {
	t.Helper()
	conn, url := dbtest.New(t)
	passwords := map[string]string{natsauth.Admin: rand.Text()}
	for _, name := range append(slices.Clone(natsauth.Services), requesters...) {
		passwords[name] = rand.Text()
	}
	users, err := natsauth.ServerUsers(passwords)
	if err != nil {
		t.Fatalf("apptest: %v", err)
	}
	return &Env{DB: conn, DatabaseURL: url, NATS: natstest.StartWith(t, &server.Options{Users: users}), Passwords: passwords}
}

// NatsURL is the server's URL as user (any user when the server has
// none).
func (e *Env) NatsURL(user string) string {
	u, err := url.Parse(e.NATS.ClientURL())
	if err != nil || e.Passwords == nil {
		return e.NATS.ClientURL()
	}
	u.User = url.UserPassword(user, e.Passwords[user])
	return u.String()
}

// Settings returns the common settings pointing at this environment (as
// the admin user, when the server has users).
func (e *Env) Settings() settings.Common {
	return e.settingsAs(natsauth.Admin)
}

func (e *Env) settingsAs(user string) settings.Common {
	return settings.Common{DatabaseURL: e.DatabaseURL, NatsURL: e.NatsURL(user), HTTPAddr: "127.0.0.1:0",
		AdminToken: "test-token", LogLevel: "debug", StreamReplicas: 1, ShutdownTimeout: 10 * time.Second}
}

// Deps connects a service named name, logging to the test; as the NATS
// user of that name, when the server has users.
func (e *Env) Deps(t testing.TB, name string) *app.Deps {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).With(zap.String("service", name))
	d, err := app.Connect(ctx, name, e.settingsAs(name), log, 20*time.Second)
	if err != nil {
		t.Fatalf("apptest: connecting %s: %v", name, err)
	}
	t.Cleanup(d.Close)
	return d
}

// Start starts svc and stops it when the test ends, failing the test if
// it does not stop within 30 s or reports an error when it does.
func Start(t testing.TB, svc startstop.Service) {
	t.Helper()
	if err := svc.Start(context.Background()); err != nil {
		t.Fatalf("apptest: starting %T: %v", svc, err)
	}
	t.Cleanup(func() {
		if err := startstop.StopWithin(30*time.Second, startstop.Part{Name: fmt.Sprintf("%T", svc), Service: svc}); err != nil {
			t.Errorf("apptest: stopping %T: %v", svc, err)
		}
	})
}

// Eventually polls cond every 20 ms until it is true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
