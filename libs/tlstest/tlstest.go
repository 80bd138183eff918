// Package tlstest makes the certificates of TLS tests: a certificate
// authority of the test's own, and the server and client certificates it
// signs, written as PEM files (keys mode 600) the way an operator would
// give them to nats-server, PostgreSQL and the services.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority whose files are in Dir.
type CA struct {
	// Dir holds the CA's and its certificates' files.
	Dir string
	// File is the CA certificate's PEM file.
	File string

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Pair is a certificate and its private key, as PEM files.
type Pair struct {
	Cert, Key string
}

// NewCA makes a CA named name (its common name and file name: name.pem)
// whose files go to dir (created if missing).
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	ca := &CA{Dir: dir, key: newKey(t)}
	tmpl := template(t, name)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("tlstest: CA certificate: %v", err)
	}
	if ca.cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	ca.File = filepath.Join(dir, name+".pem")
	writePEM(t, ca.File, "CERTIFICATE", der, 0o644)
	return ca
}

// Server issues a server certificate for hosts (IP addresses or DNS
// names), written as name.pem and name-key.pem.
func (ca *CA) Server(t testing.TB, name string, hosts ...string) Pair {
	t.Helper()
	tmpl := template(t, name)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(t, name, tmpl)
}

// Client issues a client certificate whose common name is commonName (a
// PostgreSQL role, under `cert` authentication), written as
// commonName.pem and commonName-key.pem.
func (ca *CA) Client(t testing.TB, commonName string) Pair {
	t.Helper()
	tmpl := template(t, commonName)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return ca.issue(t, commonName, tmpl)
}

func (ca *CA) issue(t testing.TB, name string, tmpl *x509.Certificate) Pair {
	t.Helper()
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("tlstest: certificate %s: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	p := Pair{Cert: filepath.Join(ca.Dir, name+".pem"), Key: filepath.Join(ca.Dir, name+"-key.pem")}
	writePEM(t, p.Cert, "CERTIFICATE", der, 0o644)
	writePEM(t, p.Key, "PRIVATE KEY", keyDER, 0o600)
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	return key
}

// template is a certificate valid from a minute ago for an hour.
func template(t testing.TB, commonName string) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("tlstest: %v", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"Greenroom tests"}},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Hour),
	}
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatalf("tlstest: %v", err)
	}
}
