package settings

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
)

// The variables of NatsTLS.
const (
	NatsTLSCAEnv   = "GREENROOM_NATS_TLS_CA"
	NatsTLSCertEnv = "GREENROOM_NATS_TLS_CERT"
	NatsTLSKeyEnv  = "GREENROOM_NATS_TLS_KEY"
)

// NatsTLS are the files of TLS to NATS, the same for the services and the
// CLI. With none set, a connection uses TLS only when its URL says so
// (tls://) or the server requires it, trusting the system's CAs; with any
// set, every connection uses TLS (1.2 at least) whatever its URL's scheme.
type NatsTLS struct {
	// CA is a PEM file of the CA (or CAs) that signed the server's
	// certificate; empty: the system's.
	CA string
	// Cert and Key are the PEM files of the client certificate, for a
	// server that verifies its clients (nats-server's tls { verify: true });
	// both or neither.
	Cert string
	Key  string
}

// Each calls add with each setting of t, its variable and its usage: the
// one list that both flag packages (Register; the CLI's cobra flags)
// register, so they cannot drift apart.
func (t *NatsTLS) Each(add func(p *string, env, usage string)) {
	add(&t.CA, NatsTLSCAEnv, "PEM file of the CA that signed the NATS server's certificate: TLS to NATS (default: the system's CAs)")
	add(&t.Cert, NatsTLSCertEnv, "PEM file of the client certificate presented to NATS, with "+NatsTLSKeyEnv)
	add(&t.Key, NatsTLSKeyEnv, "PEM file of the private key of "+NatsTLSCertEnv)
}

// Register adds t's settings to fs (no defaults).
func (t *NatsTLS) Register(fs *flag.FlagSet) {
	t.Each(func(p *string, env, usage string) { String(fs, p, env, "", usage) })
}

// Enabled reports whether any of t is set.
func (t NatsTLS) Enabled() bool { return t.CA != "" || t.Cert != "" || t.Key != "" }

// Config returns the TLS configuration of t's files: TLS 1.2 at least, the
// CA's certificates as roots, the client certificate; nil when none is
// set. A file that cannot be read or parsed is an error naming its
// setting.
func (t NatsTLS) Config() (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	return clientTLS(t.CA, t.Cert, t.Key, NatsTLSCAEnv, NatsTLSCertEnv, NatsTLSKeyEnv)
}

// clientTLS is the TLS configuration of a client with these files (TLS
// 1.2 at least; the CA's certificates as roots, the system's when ca is
// empty; the client certificate, both files or neither), a file's problem
// named by its setting (caEnv, certEnv, keyEnv).
func clientTLS(ca, cert, key, caEnv, certEnv, keyEnv string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, settingError(caEnv, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, settingError(caEnv, fmt.Errorf("%s holds no PEM certificate", ca))
		}
	}
	switch {
	case cert == "" && key == "":
	case cert == "" || key == "":
		return nil, fmt.Errorf("%s and %s go together: set both or neither", flagged(certEnv), flagged(keyEnv))
	default:
		certPEM, err := os.ReadFile(cert)
		if err != nil {
			return nil, settingError(certEnv, err)
		}
		keyPEM, err := os.ReadFile(key)
		if err != nil {
			return nil, settingError(keyEnv, err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s and %s (%s, %s): %w", flagged(certEnv), flagged(keyEnv), cert, key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// The variables of DockerTLS.
const (
	DockerTLSCAEnv   = "GREENROOM_DOCKER_TLS_CA"
	DockerTLSCertEnv = "GREENROOM_DOCKER_TLS_CERT"
	DockerTLSKeyEnv  = "GREENROOM_DOCKER_TLS_KEY"
)

// DockerTLS are the files of TLS to the Docker agents whose endpoint is
// tcp:// (the provisioner's): the CA that signed the engines' server
// certificates (dockerd --tlsverify --tlscacert … --tlscert … --tlskey …)
// and the client certificate they require. With none set, tcp://
// endpoints are plain HTTP; with any set, every tcp:// endpoint is
// reached over TLS 1.2 or later, verified against CA. unix:// endpoints
// never use them.
type DockerTLS struct {
	CA, Cert, Key string
}

// Register adds t's settings to fs (no defaults).
func (t *DockerTLS) Register(fs *flag.FlagSet) {
	String(fs, &t.CA, DockerTLSCAEnv, "", "PEM file of the CA that signed the tcp:// Docker agents' certificates: TLS to them")
	String(fs, &t.Cert, DockerTLSCertEnv, "", "PEM file of the client certificate presented to tcp:// Docker agents, with "+DockerTLSKeyEnv)
	String(fs, &t.Key, DockerTLSKeyEnv, "", "PEM file of the private key of "+DockerTLSCertEnv)
}

// Enabled reports whether any of t is set.
func (t DockerTLS) Enabled() bool { return t.CA != "" || t.Cert != "" || t.Key != "" }

// Check reads t's files, so that a bad one stops the start, naming its
// setting.
func (t DockerTLS) Check() error {
	if !t.Enabled() {
		return nil
	}
	_, err := clientTLS(t.CA, t.Cert, t.Key, DockerTLSCAEnv, DockerTLSCertEnv, DockerTLSKeyEnv)
	return err
}

// ConnectOptions are the options of a NATS connection that uses t (see
// Config): none when t is empty. Every NATS connection of the services
// (libs/app) and of the CLI takes them.
func (t NatsTLS) ConnectOptions() ([]nats.Option, error) {
	cfg, err := t.Config()
	if err != nil || cfg == nil {
		return nil, err
	}
	return []nats.Option{nats.Secure(cfg)}, nil
}

// settingError names the setting (variable and flag) err is about.
func settingError(env string, err error) error {
	return fmt.Errorf("%s: %w", flagged(env), err)
}

// flagged names a setting both ways: GREENROOM_NATS_TLS_CA (--nats-tls-ca).
func flagged(env string) string { return env + " (--" + FlagName(env) + ")" }
