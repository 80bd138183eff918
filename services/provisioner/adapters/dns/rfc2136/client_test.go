package rfc2136_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/dns/rfc2136"
	"github.com/greenroom-dev/greenroom/services/provisioner/internal/dnstest"
)

// Every test here runs against its own real named (internal/dnstest):
// what it asserts is what named accepted, refused and answers.

// config is the Config of a client of srv with its key.
func config(srv *dnstest.Server) rfc2136.Config {
	return rfc2136.Config{
		Server:        srv.Addr,
		Zone:          strings.TrimSuffix(srv.Zone, "."), // canonicalized by New
		TSIGKeyName:   srv.KeyName,
		TSIGAlgorithm: srv.KeyAlgorithm,
		TSIGSecret:    srv.Secret,
	}
}

func newClient(t *testing.T, c rfc2136.Config) *rfc2136.Client {
	t.Helper()
	cl, err := rfc2136.New(c)
	if err != nil {
		t.Fatalf("New(%v): %v", c, err)
	}
	return cl
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// query asks srv for name's records of type qtype with a plain, unsigned
// miekg/dns query over UDP (what any resolver would send), not through
// the client under test.
func query(t *testing.T, srv *dnstest.Server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, srv.Addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	if !r.Authoritative {
		t.Fatalf("query %s %s: answer not authoritative:\n%v", name, dns.TypeToString[qtype], r)
	}
	return r
}

// plainA is name's A records as a plain query sees them: the rcode, the
// addresses and their TTLs.
func plainA(t *testing.T, srv *dnstest.Server, name string) (rcode int, got []netip.Addr, ttls []uint32) {
	t.Helper()
	r := query(t, srv, name, dns.TypeA)
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addr, _ := netip.AddrFromSlice(a.A)
			got = append(got, addr.Unmap())
			ttls = append(ttls, a.Hdr.Ttl)
		}
	}
	slices.SortFunc(got, netip.Addr.Compare)
	return r.Rcode, got, ttls
}

// serial is the zone's SOA serial: named raises it with every update it
// applies, and leaves it with every update it refuses.
func serial(t *testing.T, srv *dnstest.Server) uint32 {
	t.Helper()
	r := query(t, srv, srv.Zone, dns.TypeSOA)
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	t.Fatalf("no SOA for %s:\n%v", srv.Zone, r)
	return 0
}

// rawInsert adds rrs with an update signed with srv's key, bypassing the
// client: records the client did not make, for it to replace or keep.
func rawInsert(t *testing.T, srv *dnstest.Server, rrs ...string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetUpdate(srv.Zone)
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		m.Insert([]dns.RR{rr})
	}
	m.SetTsig(srv.KeyName, dns.Fqdn(srv.KeyAlgorithm), 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{srv.KeyName: srv.Secret}}
	r, _, err := c.Exchange(m, srv.Addr)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("raw update %v: %v %v", rrs, err, r)
	}
}

func lookup(t *testing.T, cl *rfc2136.Client, host string) []netip.Addr {
	t.Helper()
	got, err := cl.Lookup(ctx(t), host)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", host, err)
	}
	return got
}

func TestRegisterTwoAgentsBothResolve(t *testing.T) {
	srv := dnstest.Start(t)
	c := config(srv)
	c.TTL = 120
	cl := newClient(t, c)
	before := serial(t, srv)

	agents := map[string]string{"pool-a-3f2b": "10.20.0.11", "pool-a-7c1d": "10.20.0.12"}
	for host, addr := range agents {
		if err := cl.Register(ctx(t), host, netip.MustParseAddr(addr)); err != nil {
			t.Fatalf("Register(%s, %s): %v", host, addr, err)
		}
	}

	for host, addr := range agents {
		if got := lookup(t, cl, host); !slices.Equal(got, addrs(addr)) {
			t.Errorf("Lookup(%s) = %v, want [%s]", host, got, addr)
		}
		rcode, got, ttls := plainA(t, srv, host+"."+srv.Zone)
		if rcode != dns.RcodeSuccess || !slices.Equal(got, addrs(addr)) {
			t.Errorf("plain query for %s: %s %v, want NOERROR [%s]", host, dns.RcodeToString[rcode], got, addr)
		}
		if !slices.Equal(ttls, []uint32{120}) {
			t.Errorf("%s's TTLs = %v, want [120] (the config's ttl)", host, ttls)
		}
	}
	if after := serial(t, srv); after <= before {
		t.Errorf("zone serial %d after two updates, was %d: named applied nothing?", after, before)
	}
}

func TestRegisterReplacesEveryARecord(t *testing.T) {
	srv := dnstest.Start(t)
	cl := newClient(t, config(srv))
	name := "pool-b-0001." + srv.Zone

	// Records the client did not make: two A records and a TXT record.
	rawInsert(t, srv,
		name+" 60 IN A 192.0.2.1",
		name+" 60 IN A 192.0.2.2",
		name+` 60 IN TXT "kept"`)
	if got := lookup(t, cl, "pool-b-0001"); !slices.Equal(got, addrs("192.0.2.1", "192.0.2.2")) {
		t.Fatalf("before Register: %v", got)
	}

	// The host in each of the forms Name takes: the same record each time.
	for _, step := range []struct{ host, addr string }{
		{"pool-b-0001", "10.20.0.21"},
		{"pool-b-0001", "10.20.0.22"},
		{"POOL-B-0001", "10.20.0.23"},
		{"pool-b-0001." + srv.Zone, "10.20.0.24"},
		{"pool-b-0001." + strings.TrimSuffix(srv.Zone, "."), "10.20.0.24"}, // the same address again
		{"pool-b-0001", "::ffff:10.20.0.25"},                               // IPv4-mapped: its IPv4 address
	} {
		if err := cl.Register(ctx(t), step.host, netip.MustParseAddr(step.addr)); err != nil {
			t.Fatalf("Register(%s, %s): %v", step.host, step.addr, err)
		}
		want := addrs(netip.MustParseAddr(step.addr).Unmap().String())
		if got := lookup(t, cl, "pool-b-0001"); !slices.Equal(got, want) {
			t.Fatalf("after Register(%s, %s): Lookup = %v, want exactly %v", step.host, step.addr, got, want)
		}
		if _, got, _ := plainA(t, srv, name); !slices.Equal(got, want) {
			t.Fatalf("after Register(%s, %s): plain query = %v, want exactly %v", step.host, step.addr, got, want)
		}
	}
	if r := query(t, srv, name, dns.TypeTXT); len(r.Answer) != 1 {
		t.Errorf("Register touched the name's TXT record: %v", r.Answer)
	}
}

func TestRemove(t *testing.T) {
	srv := dnstest.Start(t)
	cl := newClient(t, config(srv))

	for _, host := range []string{"pool-c-1", "pool-c-2"} {
		if err := cl.Register(ctx(t), host, netip.MustParseAddr("10.20.0.31")); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Remove(ctx(t), "pool-c-1"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := lookup(t, cl, "pool-c-1"); len(got) != 0 {
		t.Errorf("Lookup after Remove = %v, want none", got)
	}
	if rcode, got, _ := plainA(t, srv, "pool-c-1."+srv.Zone); rcode != dns.RcodeNameError || len(got) != 0 {
		t.Errorf("plain query after Remove: %s %v, want NXDOMAIN", dns.RcodeToString[rcode], got)
	}
	if got := lookup(t, cl, "pool-c-2"); !slices.Equal(got, addrs("10.20.0.31")) {
		t.Errorf("Remove of pool-c-1 changed pool-c-2: %v", got)
	}

	// Removing what is not there: nil, and nothing changes.
	before := serial(t, srv)
	for _, host := range []string{"pool-c-1", "never-registered"} {
		if err := cl.Remove(ctx(t), host); err != nil {
			t.Errorf("Remove(%s) of a name without A records: %v, want nil", host, err)
		}
	}
	if after := serial(t, srv); after != before {
		t.Errorf("removing nothing changed the zone: serial %d → %d", before, after)
	}

	// A name with other records: its A records go, the rest stays (NODATA
	// for A, which Lookup reports as none).
	name := "pool-c-3." + srv.Zone
	rawInsert(t, srv, name+` 60 IN TXT "kept"`)
	if err := cl.Register(ctx(t), "pool-c-3", netip.MustParseAddr("10.20.0.33")); err != nil {
		t.Fatal(err)
	}
	if err := cl.Remove(ctx(t), "pool-c-3"); err != nil {
		t.Fatal(err)
	}
	if got := lookup(t, cl, "pool-c-3"); len(got) != 0 {
		t.Errorf("Lookup after Remove = %v, want none", got)
	}
	if rcode, got, _ := plainA(t, srv, name); rcode != dns.RcodeSuccess || len(got) != 0 {
		t.Errorf("plain query after Remove: %s %v, want NOERROR without records", dns.RcodeToString[rcode], got)
	}
	if r := query(t, srv, name, dns.TypeTXT); len(r.Answer) != 1 {
		t.Errorf("Remove deleted the name's TXT record: %v", r.Answer)
	}
}

func TestRefusedUpdatesChangeNothing(t *testing.T) {
	srv := dnstest.Start(t)
	good := newClient(t, config(srv))
	if err := good.Register(ctx(t), "pool-d-1", netip.MustParseAddr("10.20.0.41")); err != nil {
		t.Fatal(err)
	}

	otherSecret := make([]byte, 32)
	if _, err := rand.Read(otherSecret); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		config    func(*rfc2136.Config)
		rcode     int
		tsigError uint16
		want      []string // in the error's message
	}{
		{"wrong secret", func(c *rfc2136.Config) { c.TSIGSecret = base64.StdEncoding.EncodeToString(otherSecret) },
			dns.RcodeNotAuth, dns.RcodeBadSig, []string{"NOTAUTH", "BADSIG"}},
		{"key the server does not know", func(c *rfc2136.Config) { c.TSIGKeyName = "someone-else" },
			dns.RcodeNotAuth, dns.RcodeBadKey, []string{"NOTAUTH", "BADKEY"}},
		{"wrong algorithm", func(c *rfc2136.Config) { c.TSIGAlgorithm = "hmac-sha512" },
			dns.RcodeNotAuth, dns.RcodeBadKey, []string{"NOTAUTH", "BADKEY"}},
		{"unsigned", func(c *rfc2136.Config) { c.TSIGKeyName, c.TSIGSecret = "", "" },
			dns.RcodeRefused, 0, []string{"REFUSED"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config(srv)
			tc.config(&c)
			bad := newClient(t, c)
			before := serial(t, srv)

			check := func(op, name string, err error) {
				t.Helper()
				var refused *rfc2136.RefusedError
				if !errors.As(err, &refused) {
					t.Fatalf("%s: %v, want a *RefusedError", op, err)
				}
				if refused.Rcode != tc.rcode || refused.TSIGError != tc.tsigError {
					t.Errorf("%s: rcode %s, TSIG error %s; want %s, %s", op,
						dns.RcodeToString[refused.Rcode], dns.RcodeToString[int(refused.TSIGError)],
						dns.RcodeToString[tc.rcode], dns.RcodeToString[int(tc.tsigError)])
				}
				for _, w := range append([]string{srv.Addr, name}, tc.want...) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not name %q", op, err, w)
					}
				}
			}
			check("Register of an existing name", "pool-d-1."+srv.Zone,
				bad.Register(ctx(t), "pool-d-1", netip.MustParseAddr("10.20.0.66")))
			check("Register of a new name", "pool-d-2."+srv.Zone,
				bad.Register(ctx(t), "pool-d-2", netip.MustParseAddr("10.20.0.66")))
			check("Remove", "pool-d-1."+srv.Zone, bad.Remove(ctx(t), "pool-d-1"))

			if got := lookup(t, good, "pool-d-1"); !slices.Equal(got, addrs("10.20.0.41")) {
				t.Errorf("after refused updates pool-d-1 = %v, want [10.20.0.41]", got)
			}
			if got := lookup(t, good, "pool-d-2"); len(got) != 0 {
				t.Errorf("after a refused update pool-d-2 = %v, want none", got)
			}
			if after := serial(t, srv); after != before {
				t.Errorf("refused updates changed the zone: serial %d → %d", before, after)
			}
		})
	}

	t.Run("zone the server is not primary for", func(t *testing.T) {
		c := config(srv)
		c.Zone = "elsewhere.test"
		err := newClient(t, c).Register(ctx(t), "pool-d-1", netip.MustParseAddr("10.20.0.66"))
		var refused *rfc2136.RefusedError
		if !errors.As(err, &refused) || refused.Rcode != dns.RcodeNotAuth {
			t.Fatalf("Register in a zone named does not serve: %v, want NOTAUTH", err)
		}
		if !strings.Contains(err.Error(), "pool-d-1.elsewhere.test.") || !strings.Contains(err.Error(), srv.Addr) {
			t.Errorf("error %q does not name the name and the server", err)
		}
	})

	t.Run("lookup with a wrong secret", func(t *testing.T) {
		c := config(srv)
		c.TSIGSecret = base64.StdEncoding.EncodeToString(otherSecret)
		_, err := newClient(t, c).Lookup(ctx(t), "pool-d-1")
		var refused *rfc2136.RefusedError
		if !errors.As(err, &refused) || refused.Rcode != dns.RcodeNotAuth || refused.TSIGError != dns.RcodeBadSig {
			t.Fatalf("Lookup with a wrong secret: %v, want NOTAUTH (BADSIG)", err)
		}
	})
}

// tripwire is a TCP listener that counts the connections made to it and
// never answers: a client pointed at it that reports no connection sent
// nothing, and one that sends waits for an answer that never comes.
func tripwire(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			conns.Add(1)
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String(), conns
}

func TestInvalidHostsAreRefusedBeforeSending(t *testing.T) {
	addr, conns := tripwire(t)
	cl := newClient(t, rfc2136.Config{Server: addr, Zone: "agents.greenroom.test"})
	ip := netip.MustParseAddr("10.20.0.51")

	for _, host := range []string{
		"",
		"pool.a",                         // a dot: not one label
		"pool_a",                         // underscore
		"pool a",                         // space
		"-pool",                          // leading hyphen
		"pool-",                          // trailing hyphen
		"pool-é",                         // not ASCII
		strings.Repeat("a", 64),          // longer than a label
		"pool-a.",                        // fully qualified, at the root
		"pool-a.example.com.",            // fully qualified, in another zone
		"pool-a.example.com",             // another zone, without the dot
		"agents.greenroom.test",          // the zone's apex
		"agents.greenroom.test.",         // the zone's apex, fully qualified
		"x.pool-a.agents.greenroom.test", // below an agent's name
	} {
		if err := cl.Register(ctx(t), host, ip); !errors.Is(err, rfc2136.ErrInvalidHost) {
			t.Errorf("Register(%q): %v, want ErrInvalidHost", host, err)
		}
		if err := cl.Remove(ctx(t), host); !errors.Is(err, rfc2136.ErrInvalidHost) {
			t.Errorf("Remove(%q): %v, want ErrInvalidHost", host, err)
		}
		if _, err := cl.Lookup(ctx(t), host); !errors.Is(err, rfc2136.ErrInvalidHost) {
			t.Errorf("Lookup(%q): %v, want ErrInvalidHost", host, err)
		}
	}
	for _, bad := range []netip.Addr{netip.MustParseAddr("2001:db8::1"), {}} {
		if err := cl.Register(ctx(t), "pool-a", bad); err == nil {
			t.Errorf("Register(pool-a, %v): nil, want an error (A records are IPv4)", bad)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections made for invalid hosts and addresses, want none", n)
	}

	for _, host := range []string{"pool-a-3f2b", "POOL-A-3F2B", "pool-a-3f2b.agents.greenroom.test", "pool-a-3f2b.AGENTS.greenroom.test."} {
		if got, err := cl.Name(host); err != nil || got != "pool-a-3f2b.agents.greenroom.test." {
			t.Errorf("Name(%q) = %q, %v; want pool-a-3f2b.agents.greenroom.test.", host, got, err)
		}
	}
}

func TestCallsAreBoundedByTheirContext(t *testing.T) {
	addr, conns := tripwire(t) // accepts and never answers
	cl := newClient(t, rfc2136.Config{Server: addr, Zone: "agents.greenroom.test"})
	ip := netip.MustParseAddr("10.20.0.61")

	t.Run("deadline", func(t *testing.T) {
		c, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := cl.Register(c, "pool-e-1", ip)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Register against a silent server: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Register returned after %s, its deadline was 300ms", d)
		}
	})
	t.Run("cancellation", func(t *testing.T) {
		c, cancel := context.WithCancel(t.Context()) // no deadline: TimeoutDefault (5 s)
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		err := cl.Remove(c, "pool-e-1")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Remove cancelled: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Remove returned %s after it was cancelled at 300ms", d)
		}
	})
	t.Run("no deadline", func(t *testing.T) {
		cl := newClient(t, rfc2136.Config{Server: addr, Zone: "agents.greenroom.test"})
		cl.SetTimeout(300 * time.Millisecond) // TimeoutDefault, shortened
		start := time.Now()
		_, err := cl.Lookup(t.Context(), "pool-e-1")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lookup without a deadline against a silent server: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Lookup returned after %s, its timeout was 300ms", d)
		}
	})
	if conns.Load() != 3 {
		t.Errorf("%d connections to the silent server, want 3 (one per call)", conns.Load())
	}
}
