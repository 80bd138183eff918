package settings

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/greenroom-dev/greenroom/libs/tlstest"
)

func TestNatsTLSSettingsComeFromTheirVariablesAndFlags(t *testing.T) {
	t.Setenv("GREENROOM_NATS_TLS_CA", "/etc/greenroom/nats-ca.pem")
	t.Setenv("GREENROOM_NATS_TLS_KEY", "/etc/greenroom/env-key.pem")
	var out bytes.Buffer
	fs, c, _, _ := newFlagSet(&out)
	if err := Parse(fs, []string{"--nats-tls-cert", "/etc/greenroom/nats.pem", "--nats-tls-key", "/etc/greenroom/nats-key.pem"}); err != nil {
		t.Fatal(err)
	}
	want := NatsTLS{CA: "/etc/greenroom/nats-ca.pem", Cert: "/etc/greenroom/nats.pem", Key: "/etc/greenroom/nats-key.pem"}
	if c.NatsTLS != want {
		t.Fatalf("NatsTLS = %+v, want %+v (the flag wins over the variable)", c.NatsTLS, want)
	}

	out.Reset()
	fs, _, _, _ = newFlagSet(&out)
	if err := Parse(fs, []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, s := range []string{"-nats-tls-ca", "GREENROOM_NATS_TLS_CA", "-nats-tls-cert", "GREENROOM_NATS_TLS_CERT", "-nats-tls-key", "GREENROOM_NATS_TLS_KEY"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("--help lacks %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "/etc/greenroom") {
		t.Errorf("--help shows a value from the environment:\n%s", out.String())
	}
}

func TestNatsTLSIsOffUntilSetAndThenTLS12AtLeastWithTheCAAndClientCertificate(t *testing.T) {
	if opts, err := (NatsTLS{}).ConnectOptions(); err != nil || opts != nil {
		t.Fatalf("no setting: options %v, error %v; want none", opts, err)
	}
	ca := tlstest.NewCA(t, t.TempDir(), "ca")
	client := ca.Client(t, "greenroom")
	cfg, err := NatsTLS{CA: ca.File, Cert: client.Cert, Key: client.Key}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.InsecureSkipVerify {
		t.Fatalf("config: min version %x, roots %v, %d certificates, insecure %v", cfg.MinVersion, cfg.RootCAs != nil, len(cfg.Certificates), cfg.InsecureSkipVerify)
	}
	// A CA alone: the server is verified, no client certificate.
	if cfg, err := (NatsTLS{CA: ca.File}).Config(); err != nil || len(cfg.Certificates) != 0 || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("CA only: %+v %v", cfg, err)
	}
	if opts, err := (NatsTLS{CA: ca.File}).ConnectOptions(); err != nil || len(opts) != 1 {
		t.Fatalf("CA only: %d options, error %v", len(opts), err)
	}
}

func TestABadNatsTLSFileIsAnErrorNamingItsSetting(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	client := ca.Client(t, "greenroom")
	other := tlstest.NewCA(t, filepath.Join(dir, "other"), "other").Client(t, "other")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, c := range []struct {
		name string
		tls  NatsTLS
		want []string
	}{
		{"missing CA", NatsTLS{CA: missing}, []string{"GREENROOM_NATS_TLS_CA", "--nats-tls-ca", missing}},
		{"CA not PEM", NatsTLS{CA: notPEM}, []string{"GREENROOM_NATS_TLS_CA", "no PEM certificate"}},
		{"cert without key", NatsTLS{CA: ca.File, Cert: client.Cert}, []string{"GREENROOM_NATS_TLS_CERT", "GREENROOM_NATS_TLS_KEY", "both or neither"}},
		{"key without cert", NatsTLS{Key: client.Key}, []string{"GREENROOM_NATS_TLS_CERT", "GREENROOM_NATS_TLS_KEY", "both or neither"}},
		{"missing cert", NatsTLS{Cert: missing, Key: client.Key}, []string{"GREENROOM_NATS_TLS_CERT", missing}},
		{"missing key", NatsTLS{Cert: client.Cert, Key: missing}, []string{"GREENROOM_NATS_TLS_KEY", missing}},
		{"key of another certificate", NatsTLS{Cert: client.Cert, Key: other.Key}, []string{"GREENROOM_NATS_TLS_CERT", "GREENROOM_NATS_TLS_KEY", "private key does not match"}},
	} {
		_, err := c.tls.ConnectOptions()
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
}
