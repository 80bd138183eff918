package app_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/bus"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/tlstest"
)

// tlsNATS is a nats-server that speaks only TLS and requires a client
// certificate signed by ca (nats-server's tls { verify: true }), and a
// database, for app.Connect.
type tlsNATS struct {
	srv         *server.Server
	ca          *tlstest.CA
	client      tlstest.Pair
	databaseURL string
}

func startTLSNATS(t *testing.T) *tlsNATS {
	t.Helper()
	ca := tlstest.NewCA(t, t.TempDir(), "ca")
	cert := ca.Server(t, "nats", "127.0.0.1")
	_, databaseURL := dbtest.New(t)
	return &tlsNATS{
		srv:         natstest.StartWith(t, natstest.TLSOptions(t, cert.Cert, cert.Key, ca.File)),
		ca:          ca,
		client:      ca.Client(t, "greenroom-test"),
		databaseURL: databaseURL,
	}
}

// settings are a service's settings for e's server at natsURL.
func (e *tlsNATS) settings(natsURL string, tls settings.NatsTLS) settings.Common {
	return settings.Common{DatabaseURL: e.databaseURL, NatsURL: natsURL, NatsTLS: tls,
		LogLevel: "debug", StreamReplicas: 1, ShutdownTimeout: 10 * time.Second}
}

// natsURL is the server's address with scheme.
func (e *tlsNATS) natsURL(scheme string) string {
	u, _ := url.Parse(e.srv.ClientURL())
	u.Scheme = scheme
	return u.String()
}

func connect(t *testing.T, s settings.Common, timeout time.Duration) (*app.Deps, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := app.Connect(ctx, "test", s, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), timeout)
	if err == nil {
		t.Cleanup(d.Close)
	}
	return d, err
}

// TestServiceConnectsToNatsOverTLSWithItsClientCertificate: with the CA
// and client certificate settings, app.Connect reaches a server that
// requires and verifies client certificates, over TLS 1.2 or newer, with
// a tls:// URL or a nats:// one, and JetStream acknowledges a publish.
func TestServiceConnectsToNatsOverTLSWithItsClientCertificate(t *testing.T) {
	e := startTLSNATS(t)
	for _, scheme := range []string{"tls", "nats"} {
		t.Run(scheme, func(t *testing.T) {
			d, err := connect(t, e.settings(e.natsURL(scheme), settings.NatsTLS{CA: e.ca.File, Cert: e.client.Cert, Key: e.client.Key}), 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			state, err := d.NC.TLSConnectionState()
			if err != nil {
				t.Fatalf("not a TLS connection: %v", err)
			}
			if state.Version < tls.VersionTLS12 || len(state.PeerCertificates) == 0 || state.PeerCertificates[0].Subject.CommonName != "nats" {
				t.Fatalf("TLS version %x, peer %v", state.Version, state.PeerCertificates)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ack, err := d.JS.Publish(ctx, "greenroom.test.tls", []byte("over TLS"))
			if err != nil {
				t.Fatal(err)
			}
			if ack.Stream != bus.StreamName || ack.Sequence == 0 {
				t.Fatalf("ack %+v", ack)
			}
		})
	}
}

// TestNatsRefusesTLSThatIsNotTheDeployments: a connection is refused, and
// app.Connect's error says why, without the client certificate (the
// server requires one), when the server's certificate is not signed by
// the configured CA, and when the server does not speak TLS at all (the
// settings never fall back to plain text).
func TestNatsRefusesTLSThatIsNotTheDeployments(t *testing.T) {
	e := startTLSNATS(t)
	otherCA := tlstest.NewCA(t, filepath.Join(t.TempDir(), "other"), "other-ca")
	otherClient := otherCA.Client(t, "greenroom-test")
	plain := natstest.Start(t)
	for _, c := range []struct {
		name    string
		natsURL string
		tls     settings.NatsTLS
		want    string
	}{
		{"no client certificate", e.natsURL("tls"), settings.NatsTLS{CA: e.ca.File}, "tls"},
		{"client certificate of another CA", e.natsURL("tls"), settings.NatsTLS{CA: e.ca.File, Cert: otherClient.Cert, Key: otherClient.Key}, "tls"},
		{"server not signed by the CA", e.natsURL("tls"), settings.NatsTLS{CA: otherCA.File, Cert: e.client.Cert, Key: e.client.Key}, "certificate"},
		{"server without TLS", plain.ClientURL(), settings.NatsTLS{CA: e.ca.File, Cert: e.client.Cert, Key: e.client.Key}, "secure connection"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := connect(t, e.settings(c.natsURL, c.tls), 2*time.Second)
			if err == nil {
				t.Fatal("connected")
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), "not connected to nats") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say why (want %q)", err, c.want)
			}
		})
	}
}

// TestABadNatsTLSFileStopsTheServiceAtOnce: an unreadable file is an
// error naming its setting before anything is waited for (here, a
// database that does not answer).
func TestABadNatsTLSFileStopsTheServiceAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadDB := "postgres://greenroom@" + l.Addr().String() + "/greenroom?sslmode=disable"
	_ = l.Close()
	missing := filepath.Join(t.TempDir(), "ca.pem")
	started := time.Now()
	_, err = connect(t, settings.Common{DatabaseURL: deadDB, NatsURL: settings.NatsURLDefault, NatsTLS: settings.NatsTLS{CA: missing}}, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "GREENROOM_NATS_TLS_CA") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %v, want one naming GREENROOM_NATS_TLS_CA and the file", err)
	}
	if d := time.Since(started); d > 5*time.Second {
		t.Fatalf("took %s: waited for the database first", d)
	}
}
