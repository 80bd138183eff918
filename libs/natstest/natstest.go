// Package natstest runs an embedded nats-server with JetStream for tests.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Start runs a JetStream-enabled server on a random loopback port, with its
// store in a temporary directory, and shuts it down when the test ends.
func Start(t testing.TB) *server.Server {
	t.Helper()
	return StartWith(t, &server.Options{})
}

// StartWith is Start with more options (users, say); the address, the
// store and logging are Start's.
func StartWith(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	o := *opts
	o.Host, o.Port, o.JetStream, o.StoreDir, o.NoLog, o.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, t.TempDir(), true, true
	srv, err := server.NewServer(&o)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("natstest: server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// TLSOptions are the options of a server whose clients must use TLS: its
// certificate and key (certFile, keyFile), and clients' certificates
// required and verified against caFile, as nats-server's
// tls { verify: true } does. Pass them to StartWith.
func TLSOptions(t testing.TB, certFile, keyFile, caFile string) *server.Options {
	t.Helper()
	cfg, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile, CaFile: caFile, Verify: true})
	if err != nil {
		t.Fatalf("natstest: TLS: %v", err)
	}
	return &server.Options{TLSConfig: cfg, TLS: true, TLSVerify: true, TLSTimeout: 5}
}

// Connect starts a server (see Start) and returns a connection to it.
func Connect(t testing.TB) (*server.Server, *nats.Conn) {
	t.Helper()
	srv := Start(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("natstest: connecting: %v", err)
	}
	t.Cleanup(nc.Close)
	return srv, nc
}
