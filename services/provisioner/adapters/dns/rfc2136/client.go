// Package rfc2136 is the DNS provider of type rfc2136: it registers the
// agents' names in a zone on any primary that takes dynamic updates
// (RFC 2136) — BIND, Knot, PowerDNS, Windows DNS — signed with a TSIG key
// (RFC 8945). An agent gets one A record, <agent>.<zone>, when it is up
// (Register) and loses it when it goes (Remove).
//
// Every message goes over TCP, which every such server takes: nothing is
// lost or truncated on the way, so an answer read is the server's answer
// to the whole update, signature included. Each call is bounded by its
// context's deadline, or by TimeoutDefault when the context has none.
package rfc2136

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
)

// TimeoutDefault bounds a call whose context has no deadline.
const TimeoutDefault = 5 * time.Second

// tsigFudge is how far, in seconds, the server's clock may be from ours
// for a signature to be accepted (RFC 8945's recommended 300).
const tsigFudge = 300

// ErrInvalidHost is wrapped by the error of a call given a host name that
// is not one label of the zone; nothing is sent for it.
var ErrInvalidHost = errors.New("not a host name in the zone")

// Client makes and removes the agents' A records on one primary. It holds
// no connection (each call dials its own) and is safe for concurrent use.
type Client struct {
	server string
	zone   string // lower-case, fully qualified
	ttl    uint32
	tsig   *tsigKey // nil: updates go unsigned
	// timeout bounds a call whose context has no deadline.
	timeout time.Duration
}

var _ autoscale.DNS = (*Client)(nil)

// New returns the client of c, or c's Validate error.
func New(c Config) (*Client, error) {
	n, err := c.normalized()
	if err != nil {
		return nil, err
	}
	cl := &Client{server: n.Server, zone: n.Zone, ttl: uint32(n.TTL), timeout: TimeoutDefault}
	if n.TSIGKeyName != "" {
		secret, _ := base64.StdEncoding.DecodeString(n.TSIGSecret) // checked by normalized
		cl.tsig = &tsigKey{name: n.TSIGKeyName, algorithm: n.TSIGAlgorithm, secret: secret}
	}
	return cl, nil
}

// Zone is the zone the client makes names in, fully qualified.
func (c *Client) Zone() string { return c.zone }

// Name is host's fully qualified name in the zone ("pool-a-3f2b" →
// "pool-a-3f2b.agents.example.com."), or an error wrapping ErrInvalidHost.
// host is one label (letters, digits, inner hyphens; upper case is taken
// as lower case), or that label followed by the zone.
func (c *Client) Name(host string) (string, error) {
	h := strings.ToLower(host)
	if rest, ok := strings.CutSuffix(h, "."+c.zone); ok {
		h = rest // fully qualified, in the zone
	} else if rest, ok := strings.CutSuffix(h, "."+strings.TrimSuffix(c.zone, ".")); ok {
		h = rest // the zone without its trailing dot
	} else if strings.HasSuffix(h, ".") {
		return "", fmt.Errorf("rfc2136: %q: %w %s", host, ErrInvalidHost, c.zone)
	}
	if strings.Contains(h, ".") {
		return "", fmt.Errorf("rfc2136: %q: %w %s: an agent's name is one label", host, ErrInvalidHost, c.zone)
	}
	if !label.MatchString(h) {
		return "", fmt.Errorf("rfc2136: %q: %w %s: a label is 1 to 63 letters, digits and inner hyphens", host, ErrInvalidHost, c.zone)
	}
	return h + "." + c.zone, nil
}

// Register makes host resolve to addr and to nothing else, in one update
// message: delete host's A records, then add the one for addr. The server
// applies a message whole or not at all, so host never resolves to
// nothing, nor to both the old and the new address. addr must be IPv4
// (an IPv4-mapped IPv6 address is taken as its IPv4 one).
func (c *Client) Register(ctx context.Context, host string, addr netip.Addr) error {
	name, err := c.Name(host)
	if err != nil {
		return err
	}
	if !addr.Unmap().Is4() {
		return fmt.Errorf("rfc2136: register %s: %v is not an IPv4 address (an A record)", name, addr)
	}
	m := new(dns.Msg)
	m.SetUpdate(c.zone)
	m.RemoveRRset([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}}})
	m.Insert([]dns.RR{&dns.A{
		Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: c.ttl},
		A:   addr.Unmap().AsSlice(),
	}})
	return c.update(ctx, m, "register "+name+" as "+addr.Unmap().String(), name)
}

// Remove deletes host's A records, leaving its other records (if any) as
// they are; it is nil when host has none, as the server accepts deleting
// an RRset that does not exist.
func (c *Client) Remove(ctx context.Context, host string) error {
	name, err := c.Name(host)
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetUpdate(c.zone)
	m.RemoveRRset([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}}})
	return c.update(ctx, m, "remove "+name, name)
}

// Lookup asks the server itself (not a resolver, which may answer from
// its cache) for host's A records: their addresses in order, or none when
// the name does not exist or has no A record. The autoscaler's status
// shows them; the tests check updates with them.
func (c *Client) Lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	name, err := c.Name(host)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.RecursionDesired = false
	r, err := c.exchange(ctx, m)
	if r != nil && r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, refused(c.server, "query for", name, r)
	}
	if err != nil {
		return nil, fmt.Errorf("rfc2136: look up %s at %s: %w", name, c.server, err)
	}
	if !r.Authoritative {
		return nil, fmt.Errorf("rfc2136: look up %s at %s: the answer is not authoritative: is the server a primary for %s?", name, c.server, c.zone)
	}
	var addrs []netip.Addr
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok && strings.EqualFold(a.Hdr.Name, name) {
			if addr, ok := netip.AddrFromSlice(a.A); ok {
				addrs = append(addrs, addr.Unmap())
			}
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return addrs, nil
}

// update sends the update m and checks that the server applied it.
func (c *Client) update(ctx context.Context, m *dns.Msg, what, name string) error {
	r, err := c.exchange(ctx, m)
	if r != nil && r.Rcode != dns.RcodeSuccess {
		return refused(c.server, "update of", name, r)
	}
	if err != nil {
		return fmt.Errorf("rfc2136: %s at %s: %w", what, c.server, err)
	}
	return nil
}

// exchange sends m (signed when the client has a key) over TCP and reads
// the answer, within ctx's deadline or c.timeout. It returns the answer
// whenever it has one, with an error when its signature does not verify:
// a refusal's answer is usually unsigned (RFC 8945, 5.3.2), and its rcode
// is the error worth reporting.
func (c *Client) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	left := time.Until(deadline)
	if left <= 0 {
		return nil, context.DeadlineExceeded
	}
	dc := &dns.Client{Net: "tcp", Timeout: left}
	if c.tsig != nil {
		dc.TsigProvider = c.tsig
		m.SetTsig(c.tsig.name, c.tsig.algorithm, tsigFudge, time.Now().Unix())
	}
	conn, err := dc.DialContext(ctx, c.server)
	if err != nil {
		return nil, ctxErr(ctx, deadline, err)
	}
	defer conn.Close()
	// The exchange heeds ctx's deadline but not its cancellation: closing
	// the connection ends it then.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	r, _, err := dc.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		return r, ctxErr(ctx, deadline, err)
	}
	if c.tsig != nil && r.IsTsig() == nil && r.Rcode == dns.RcodeSuccess {
		// A forged or tampered answer: a server that verified our
		// signature signs what it answers.
		return r, errors.New("the answer to a signed message is not signed")
	}
	return r, nil
}

// ctxErr is err, with ctx's error when ctx ended the exchange (err is then
// a closed connection's or an i/o timeout's). The connection's deadline
// may pass a moment before ctx's timer fires: past deadline, it is
// context.DeadlineExceeded either way.
func ctxErr(ctx context.Context, deadline time.Time, err error) error {
	ctxErr := ctx.Err()
	if ctxErr == nil && !time.Now().Before(deadline) {
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil {
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	return err
}

// RefusedError is a message the server answered with an error code:
// NOTAUTH (a signature it does not accept, or a zone it is not primary
// for), REFUSED (an update its policy does not allow), SERVFAIL....
type RefusedError struct {
	Server string
	// Op is what was refused: "update of" or "query for".
	Op   string
	Name string
	// Rcode is the answer's RCODE (dns.RcodeNotAuth, ...).
	Rcode int
	// TSIGError is the error in the answer's TSIG record (dns.RcodeBadSig,
	// dns.RcodeBadKey, dns.RcodeBadTime), or 0 when the signature was
	// not the problem.
	TSIGError uint16
}

func (e *RefusedError) Error() string {
	s := fmt.Sprintf("rfc2136: %s refused the %s %s: %s", e.Server, e.Op, e.Name, rcodeName(e.Rcode))
	if e.TSIGError != 0 {
		s += fmt.Sprintf(" (TSIG error %s: check tsig_key_name, tsig_algorithm and tsig_secret against the server's key, and the clocks)", rcodeName(int(e.TSIGError)))
	}
	return s
}

// refused is the RefusedError of the answer r.
func refused(server, op, name string, r *dns.Msg) *RefusedError {
	e := &RefusedError{Server: server, Op: op, Name: name, Rcode: r.Rcode}
	if t := r.IsTsig(); t != nil {
		e.TSIGError = t.Error
	}
	return e
}

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

// tsigKey signs messages and verifies answers with one TSIG key: a
// dns.TsigProvider that compares key names without regard to case (the
// server may answer with the name spelled as in its configuration) and
// holds the secret decoded once.
type tsigKey struct {
	name      string // lower-case, fully qualified
	algorithm string // as miekg/dns names it, "hmac-sha256."
	secret    []byte
}

// Generate is the MAC of msg, for the TSIG record t.
func (k *tsigKey) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	if !strings.EqualFold(t.Hdr.Name, k.name) {
		return nil, dns.ErrSecret
	}
	var h hash.Hash
	switch strings.ToLower(dns.Fqdn(t.Algorithm)) {
	case dns.HmacSHA1:
		h = hmac.New(sha1.New, k.secret)
	case dns.HmacSHA224:
		h = hmac.New(sha256.New224, k.secret)
	case dns.HmacSHA256:
		h = hmac.New(sha256.New, k.secret)
	case dns.HmacSHA384:
		h = hmac.New(sha512.New384, k.secret)
	case dns.HmacSHA512:
		h = hmac.New(sha512.New, k.secret)
	default:
		return nil, dns.ErrKeyAlg
	}
	h.Write(msg)
	return h.Sum(nil), nil
}

// Verify checks the MAC of msg in the TSIG record t.
func (k *tsigKey) Verify(msg []byte, t *dns.TSIG) error {
	want, err := k.Generate(msg, t)
	if err != nil {
		return err
	}
	got, err := hex.DecodeString(t.MAC)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, got) {
		return dns.ErrSig
	}
	return nil
}
