package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/tlstest"
)

// TestEveryNATSCommandUsesTheTLSSettings: migrate, audit replay and
// request reach a nats-server that requires TLS and a client certificate
// with the services' settings (variables or flags), and are refused
// without the client certificate.
func TestEveryNATSCommandUsesTheTLSSettings(t *testing.T) {
	ca := tlstest.NewCA(t, t.TempDir(), "ca")
	server := ca.Server(t, "nats", "127.0.0.1")
	client := ca.Client(t, "greenroom-cli")
	srv := natstest.StartWith(t, natstest.TLSOptions(t, server.Cert, server.Key, ca.File))
	env := map[string]string{
		"GREENROOM_NATS_URL":      srv.ClientURL(),
		"GREENROOM_DATABASE_URL":  emptyDatabase(t),
		"GREENROOM_NATS_TLS_CA":   ca.File,
		"GREENROOM_NATS_TLS_CERT": client.Cert,
		"GREENROOM_NATS_TLS_KEY":  client.Key,
	}

	out, errOut, code := runCLI(t, env, "migrate", "--wait", "5s")
	if code != exitOK || !strings.Contains(out, "stream GREENROOM created") {
		t.Fatalf("migrate: exit %d, %s\n%s", code, errOut, out)
	}
	out, errOut, code = runCLI(t, env, "audit", "replay", "--since", "10m")
	if code != exitOK || !strings.Contains(out, "no events") {
		t.Fatalf("audit replay: exit %d, %s\n%s", code, errOut, out)
	}
	// Published (JetStream acknowledged it over TLS); nobody answers.
	_, errOut, code = runCLI(t, env, "request", "--user", "alice", "--workspace", "demo", "--zone", "zone-a", "--timeout", "1s")
	if code != exitFailure || strings.Contains(errOut, "connecting to NATS") || strings.Contains(errOut, "tls") {
		t.Fatalf("request: exit %d, %s; want a timeout, not a connection error", code, errOut)
	}
	// The flags do the same as the variables.
	out, errOut, code = runCLI(t, map[string]string{"GREENROOM_NATS_URL": srv.ClientURL()},
		"--nats-tls-ca", ca.File, "--nats-tls-cert", client.Cert, "--nats-tls-key", client.Key, "audit", "replay", "--since", "10m")
	if code != exitOK {
		t.Fatalf("audit replay with flags: exit %d, %s\n%s", code, errOut, out)
	}

	// Without the client certificate the server refuses the connection.
	delete(env, "GREENROOM_NATS_TLS_CERT")
	delete(env, "GREENROOM_NATS_TLS_KEY")
	for _, args := range [][]string{
		{"audit", "replay", "--since", "10m"},
		{"request", "--user", "alice", "--workspace", "demo", "--zone", "zone-a", "--timeout", "1s"},
		{"migrate", "--wait", "1s"},
	} {
		_, errOut, code := runCLI(t, env, args...)
		if code != exitFailure || !strings.Contains(errOut, "tls") {
			t.Errorf("%s without the client certificate: exit %d, %q; want a TLS refusal", args[0], code, errOut)
		}
	}
}

func TestABadNATSTLSFileIsAUsageErrorNamingItsSetting(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ca.pem")
	_, errOut, code := runCLI(t, map[string]string{"GREENROOM_NATS_TLS_CA": missing}, "audit", "replay", "--since", "10m")
	if code != exitUsage || !strings.Contains(errOut, "GREENROOM_NATS_TLS_CA (--nats-tls-ca)") || !strings.Contains(errOut, missing) {
		t.Fatalf("exit %d, %q", code, errOut)
	}
	out, _, _ := runCLI(t, nil, "--help")
	for _, flag := range []string{"--nats-tls-ca", "--nats-tls-cert", "--nats-tls-key"} {
		if !strings.Contains(out, flag) {
			t.Errorf("--help lacks %s:\n%s", flag, out)
		}
	}
}
