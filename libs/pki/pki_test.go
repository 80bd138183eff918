package pki_test

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/pki"
)

func newCA(t *testing.T) (cert, key []byte) {
	t.Helper()
	cert, key, err := pki.NewCA("greenroom test CA")
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestNewCA(t *testing.T) {
	certPEM, keyPEM := newCA(t)
	c, err := pki.ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsCA || c.Subject.CommonName != "greenroom test CA" || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate: IsCA %v, CN %q, key usage %b", c.IsCA, c.Subject.CommonName, c.KeyUsage)
	}
	if years := time.Until(c.NotAfter).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("CA valid for %.2f years, want 10", years)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA not self-signed: %v", err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key PEM: %q", keyPEM)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if ek, ok := k.(*ecdsa.PrivateKey); !ok || ek.Curve.Params().Name != "P-256" {
		t.Errorf("key is %T, want ECDSA P-256", k)
	}
	if _, _, err := pki.NewCA(""); err == nil {
		t.Error("NewCA without a common name: no error")
	}
}

func TestIssueServerVerifies(t *testing.T) {
	caCert, caKey := newCA(t)
	ip := netip.MustParseAddr("172.30.0.7")
	certPEM, _, err := pki.Issue(caCert, caKey, pki.Server, "agent-1", []string{"agent-1", "agent-1.agents.example"}, []netip.Addr{ip}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	ca, _ := pki.ParseCertificate(caCert)
	roots.AddCert(ca)
	c, err := pki.ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, _ := newCA(t)
	otherRoots := x509.NewCertPool()
	oc, _ := pki.ParseCertificate(otherCA)
	otherRoots.AddCert(oc)

	for _, tc := range []struct {
		name, host string
		roots      *x509.CertPool
		usage      x509.ExtKeyUsage
		ok         bool
	}{
		{"its IP", "172.30.0.7", roots, x509.ExtKeyUsageServerAuth, true},
		{"its DNS name", "agent-1", roots, x509.ExtKeyUsageServerAuth, true},
		{"its other DNS name", "agent-1.agents.example", roots, x509.ExtKeyUsageServerAuth, true},
		{"another IP", "172.30.0.8", roots, x509.ExtKeyUsageServerAuth, false},
		{"another name", "agent-2", roots, x509.ExtKeyUsageServerAuth, false},
		{"another CA", "agent-1", otherRoots, x509.ExtKeyUsageServerAuth, false},
		{"as a client", "", roots, x509.ExtKeyUsageClientAuth, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Verify(x509.VerifyOptions{DNSName: tc.host, Roots: tc.roots, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
			if (err == nil) != tc.ok {
				t.Errorf("verify for %q: %v, want ok %v", tc.host, err, tc.ok)
			}
		})
	}
	if time.Until(c.NotAfter) > 24*time.Hour || time.Until(c.NotAfter) < 23*time.Hour {
		t.Errorf("NotAfter %v, want in 24h", c.NotAfter)
	}
}

func TestIssueClient(t *testing.T) {
	caCert, caKey := newCA(t)
	certPEM, keyPEM, err := pki.Issue(caCert, caKey, pki.Client, "greenroom-provisioner", nil, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := pki.ParseCertificate(certPEM)
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("ExtKeyUsage %v, want [ClientAuth]", c.ExtKeyUsage)
	}
	if c.IsCA {
		t.Error("client certificate is a CA")
	}
	roots := x509.NewCertPool()
	ca, _ := pki.ParseCertificate(caCert)
	roots.AddCert(ca)
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify as a client: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client certificate verifies as a server")
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Errorf("certificate and key do not match: %v", err)
	}
}

func TestIssueNeverOutlivesCA(t *testing.T) {
	caCert, caKey := newCA(t)
	certPEM, _, err := pki.Issue(caCert, caKey, pki.Client, "c", nil, nil, 20*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := pki.ParseCertificate(certPEM)
	ca, _ := pki.ParseCertificate(caCert)
	if c.NotAfter.After(ca.NotAfter) {
		t.Errorf("certificate valid until %v, after its CA (%v)", c.NotAfter, ca.NotAfter)
	}
}

func TestErrors(t *testing.T) {
	caCert, caKey := newCA(t)
	leafCert, leafKey, err := pki.Issue(caCert, caKey, pki.Client, "leaf", nil, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey := newCA(t)
	ip := []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	for _, tc := range []struct {
		name string
		call func() error
		want string // a regexp of the error
	}{
		{"garbage CA certificate", func() error {
			_, _, err := pki.Issue([]byte("garbage"), caKey, pki.Server, "s", nil, ip, time.Hour)
			return err
		}, `CA certificate: pki: no PEM block \(expected "CERTIFICATE"\)`},
		{"garbage CA key", func() error {
			_, _, err := pki.Issue(caCert, []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"), pki.Server, "s", nil, ip, time.Hour)
			return err
		}, `CA key: pki: parsing the PKCS #8 private key`},
		{"key where the certificate goes", func() error {
			_, _, err := pki.Issue(caKey, caKey, pki.Server, "s", nil, ip, time.Hour)
			return err
		}, `a PEM block of type "PRIVATE KEY", expected "CERTIFICATE"`},
		{"a leaf as the CA", func() error {
			_, _, err := pki.Issue(leafCert, leafKey, pki.Server, "s", nil, ip, time.Hour)
			return err
		}, `is not a CA`},
		{"another CA's key", func() error {
			_, _, err := pki.Issue(caCert, otherKey, pki.Server, "s", nil, ip, time.Hour)
			return err
		}, `CA key does not match`},
		{"server without names", func() error {
			_, _, err := pki.Issue(caCert, caKey, pki.Server, "s", nil, nil, time.Hour)
			return err
		}, `needs a DNS name or an IP address`},
		{"unknown kind", func() error {
			_, _, err := pki.Issue(caCert, caKey, pki.Kind(9), "s", nil, ip, time.Hour)
			return err
		}, `unknown certificate kind Kind\(9\)`},
		{"no validity", func() error {
			_, _, err := pki.Issue(caCert, caKey, pki.Server, "s", nil, ip, 0)
			return err
		}, `validity 0s is not positive`},
		{"zero IP", func() error {
			_, _, err := pki.Issue(caCert, caKey, pki.Server, "s", nil, []netip.Addr{{}}, time.Hour)
			return err
		}, `invalid \(zero\) IP`},
		{"fingerprint of garbage", func() error {
			_, err := pki.Fingerprint([]byte("not a certificate"))
			return err
		}, `no PEM block \(expected "CERTIFICATE"\) in 17 bytes`},
		{"fingerprint of a corrupt certificate", func() error {
			_, err := pki.Fingerprint(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))
			return err
		}, `parsing the certificate`},
		{"client config with garbage CA", func() error {
			_, err := pki.ClientTLSConfig([]byte("x"), leafCert, leafKey)
			return err
		}, `CA certificate: pki: no PEM block`},
		{"client config with mismatched key", func() error {
			_, err := pki.ClientTLSConfig(caCert, leafCert, otherKey)
			return err
		}, `client certificate and key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("error %q, want %s", err, tc.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	caCert, _ := newCA(t)
	fp, err := pki.Fingerprint(caCert)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(fp) {
		t.Errorf("fingerprint %q, want 64 lowercase hex digits", fp)
	}
	again, _ := pki.Fingerprint(caCert)
	other, _ := newCA(t)
	otherFP, _ := pki.Fingerprint(other)
	if again != fp || otherFP == fp {
		t.Errorf("fingerprints: %s, again %s, another CA's %s", fp, again, otherFP)
	}
}

// TestMutualTLS: a server with an issued certificate that requires client
// certificates of the same CA accepts ClientTLSConfig's client and refuses
// one without a certificate, or with another CA's.
func TestMutualTLS(t *testing.T) {
	caCert, caKey := newCA(t)
	srvCert, srvKey, err := pki.Issue(caCert, caKey, pki.Server, "engine", []string{"engine"}, []netip.Addr{netip.MustParseAddr("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caCert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	cliCert, cliKey, err := pki.Issue(caCert, caKey, pki.Client, "client", nil, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, otherCAKey := newCA(t)
	strangerCert, strangerKey, _ := pki.Issue(otherCA, otherCAKey, pki.Client, "stranger", nil, nil, time.Hour)

	get := func(cfg *tls.Config, host string) error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		resp, err := c.Get("https://" + net.JoinHostPort(host, port) + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "hello" {
			t.Errorf("body %q", b)
		}
		return nil
	}
	good, err := pki.ClientTLSConfig(caCert, cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	if good.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", good.MinVersion)
	}
	if err := get(good, "127.0.0.1"); err != nil {
		t.Errorf("client with its certificate: %v", err)
	}
	byName := good.Clone()
	byName.ServerName = "engine"
	if err := get(byName, "127.0.0.1"); err != nil {
		t.Errorf("client with ServerName engine: %v", err)
	}
	wrongName := good.Clone()
	wrongName.ServerName = "another-engine"
	if err := get(wrongName, "127.0.0.1"); err == nil || !strings.Contains(err.Error(), "certificate is valid for") {
		t.Errorf("client expecting another name: %v, want a name mismatch", err)
	}
	noCert := good.Clone()
	noCert.Certificates = nil
	if err := get(noCert, "127.0.0.1"); err == nil {
		t.Error("client without a certificate was served")
	}
	stranger, _ := pki.ClientTLSConfig(caCert, strangerCert, strangerKey)
	if err := get(stranger, "127.0.0.1"); err == nil {
		t.Error("client with another CA's certificate was served")
	}
}
