// Package pki makes the certificates of Docker engines reached over TLS
// with client certificates: a certificate authority, server and client
// certificates it signs, and the client's tls.Config. Keys are ECDSA P-256
// and written as PEM "PRIVATE KEY" (PKCS #8); certificates as PEM
// "CERTIFICATE". Only the standard library is used.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"time"
)

// CAValidity is how long a CA made by NewCA is valid.
const CAValidity = 10 * 365 * 24 * time.Hour

// clockSkew backdates every certificate's NotBefore, so that a peer whose
// clock is a little behind accepts a certificate made just now.
const clockSkew = 5 * time.Minute

// Kind is what a certificate issued by Issue is for.
type Kind int

const (
	// Server certificates identify a TLS server (ExtKeyUsageServerAuth)
	// by their DNS names and IP addresses.
	Server Kind = iota + 1
	// Client certificates identify a TLS client (ExtKeyUsageClientAuth).
	Client
)

func (k Kind) String() string {
	switch k {
	case Server:
		return "server"
	case Client:
		return "client"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// NewCA makes a self-signed certificate authority named commonName, valid
// for CAValidity (10 years), and returns its certificate and key as PEM.
func NewCA(commonName string) (certPEM, keyPEM []byte, err error) {
	if commonName == "" {
		return nil, nil, errors.New("pki: a CA needs a common name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating the CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs leaf certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: signing the CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// Issue makes a certificate of kind for commonName, signed by the CA
// (caCertPEM, caKeyPEM), valid for validity from now (and never past the
// CA's own expiry), with a new key. A Server certificate names dnsNames
// and ips (at least one of them); a Client certificate may name none.
func Issue(caCertPEM, caKeyPEM []byte, kind Kind, commonName string, dnsNames []string, ips []netip.Addr, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	ca, err := ParseCertificate(caCertPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: the CA certificate: %w", err)
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("pki: the CA certificate (%s) is not a CA", ca.Subject.CommonName)
	}
	caKey, err := ParseKey(caKeyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: the CA key: %w", err)
	}
	if !caKey.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, errors.New("pki: the CA key does not match the CA certificate")
	}
	if commonName == "" {
		return nil, nil, errors.New("pki: a certificate needs a common name")
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("pki: validity %v is not positive", validity)
	}
	var usage x509.ExtKeyUsage
	switch kind {
	case Server:
		usage = x509.ExtKeyUsageServerAuth
		if len(dnsNames) == 0 && len(ips) == 0 {
			return nil, nil, errors.New("pki: a server certificate needs a DNS name or an IP address")
		}
	case Client:
		usage = x509.ExtKeyUsageClientAuth
	default:
		return nil, nil, fmt.Errorf("pki: unknown certificate kind %v", kind)
	}
	netIPs := make([]net.IP, 0, len(ips))
	for _, ip := range ips {
		if !ip.IsValid() {
			return nil, nil, errors.New("pki: an invalid (zero) IP address")
		}
		netIPs = append(netIPs, net.IP(ip.Unmap().AsSlice()))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating a key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dnsNames,
		IPAddresses:  netIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: signing the %s certificate of %s: %w", kind, commonName, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// ClientTLSConfig is the configuration of a client that presents the
// client certificate (clientCertPEM, clientKeyPEM) and trusts only servers
// whose certificate the CA of caCertPEM signed, with TLS 1.2 or newer. The
// caller sets ServerName when the address it dials is not a name or IP
// address in the server's certificate.
func ClientTLSConfig(caCertPEM, clientCertPEM, clientKeyPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	ca, err := ParseCertificate(caCertPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: the CA certificate: %w", err)
	}
	pool.AddCert(ca)
	pair, err := tls.X509KeyPair(clientCertPEM, clientKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: the client certificate and key: %w", err)
	}
	return &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// Fingerprint is the SHA-256 of the certificate's DER, lowercase hex
// without colons.
func Fingerprint(certPEM []byte) (string, error) {
	c, err := ParseCertificate(certPEM)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:]), nil
}

// ParseCertificate reads the first PEM block of certPEM, which must be a
// CERTIFICATE.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	block, err := decode(certPEM, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing the certificate: %w", err)
	}
	return c, nil
}

// ParseKey reads the first PEM block of keyPEM, which must be an ECDSA
// PRIVATE KEY (PKCS #8), as this package writes them.
func ParseKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	block, err := decode(keyPEM, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing the PKCS #8 private key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: the private key is a %T, not an ECDSA key", k)
	}
	return ek, nil
}

func decode(data []byte, typ string) (*pem.Block, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("pki: no PEM block (expected %q) in %d bytes", typ, len(data))
	}
	if block.Type != typ {
		return nil, fmt.Errorf("pki: a PEM block of type %q, expected %q", block.Type, typ)
	}
	return block, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// newSerial is a random 128-bit serial number, as RFC 5280 allows (up to
// 20 octets, positive).
func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: generating a serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}
