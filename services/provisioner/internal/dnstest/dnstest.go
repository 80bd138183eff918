// Package dnstest runs a real DNS server for the tests of the DNS
// providers: BIND 9's named (Debian's bind9 package), started as a child
// process on 127.0.0.1 with a port of its own, serving one primary zone
// that accepts dynamic updates (RFC 2136) signed with a TSIG key the
// harness generates. Every test gets its own named, directory, zone and
// key, so tests share nothing and may run in parallel.
//
// It is not a fake: what a test asserts is what named accepted, refused,
// journalled and answers, so a provider that passes here talks to a real
// primary the same way.
package dnstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Defaults of every server Start makes.
const (
	// Zone is the zone every server is primary for (.test is reserved
	// for testing by RFC 2606, so it can never leak to a real name).
	Zone = "agents.greenroom.test."
	// KeyName is the name of the TSIG key updates must be signed with.
	KeyName = "greenroom-dnstest."
	// KeyAlgorithm is the TSIG key's algorithm.
	KeyAlgorithm = "hmac-sha256"
	// NamedPath is where Debian's bind9 package installs named; it is
	// used when named is not on PATH (/usr/sbin often is not, for users
	// other than root).
	NamedPath = "/usr/sbin/named"
	// InstallHint is the command that installs named.
	InstallHint = "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y bind9"

	// startTimeout bounds how long named gets to answer its zone's SOA
	// (about 0.1 s on an idle machine; much more under a loaded -race run).
	startTimeout = 30 * time.Second
	// stopTimeout is how long named gets to exit on SIGTERM before it is
	// killed.
	stopTimeout = 10 * time.Second
	// portAttempts is how many free ports are tried: another process may
	// take the port between the harness finding it free and named binding it.
	portAttempts = 5
)

// Server is a running named, stopped and removed by the test's cleanup.
type Server struct {
	// Addr is where named answers, on TCP and UDP: "127.0.0.1:port".
	Addr string
	// Zone is the zone it is primary for (Zone).
	Zone string
	// KeyName, KeyAlgorithm and Secret (base64) are the TSIG key updates
	// must be signed with: named refuses unsigned updates and updates
	// signed with any other key.
	KeyName      string
	KeyAlgorithm string
	Secret       string
	// Dir holds named.conf, the zone file and its journal.
	Dir string

	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{} // closed once named has exited
	err  error         // named's exit status, set before done is closed
}

// Start starts a named for t and waits until it answers its zone's SOA on
// both TCP and UDP. The test fails (never skips) when named is not
// installed: CI must not pass without the server the provider is tested
// against.
func Start(t testing.TB) *Server {
	t.Helper()
	named, err := exec.LookPath("named")
	if err != nil {
		if _, statErr := os.Stat(NamedPath); statErr != nil {
			t.Fatalf("dnstest: named (BIND 9) is not installed, neither on PATH nor at %s: install it with `%s`", NamedPath, InstallHint)
		}
		named = NamedPath
	}

	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatalf("dnstest: a TSIG secret: %v", err)
	}
	s := &Server{
		Zone:         Zone,
		KeyName:      KeyName,
		KeyAlgorithm: KeyAlgorithm,
		Secret:       base64.StdEncoding.EncodeToString(raw),
		Dir:          t.TempDir(),
	}

	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("dnstest: a free port on 127.0.0.1: %v", err)
		}
		err = s.start(t, named, port)
		if err == nil {
			return s
		}
		// Another process took the port first: try another one.
		if attempt < portAttempts && strings.Contains(s.log.String(), "address in use") {
			t.Logf("dnstest: port %d was taken before named bound it; trying another", port)
			continue
		}
		t.Fatalf("dnstest: named did not start: %v%s\nnamed's output:\n%s", err, appArmorHint(s.log.String()), s.log.String())
	}
}

// start writes the configuration for port, starts named and waits until
// it answers; on failure named is stopped and its output kept in s.log.
func (s *Server) start(t testing.TB, named string, port int) error {
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.log = &logBuffer{}
	if err := s.writeFiles(port); err != nil {
		return err
	}

	s.done = make(chan struct{})
	// -g: foreground, logging to stderr, no fork (so the harness holds
	// named's own pid); -4: IPv4 only; -n 1: one worker thread, enough
	// for a test and easy on a shared machine. No -u: named keeps the
	// user it is started as (root in CI), so it can read the test's
	// directory, which only that user may enter.
	s.cmd = exec.Command(named, "-g", "-4", "-n", "1", "-c", filepath.Join(s.Dir, "named.conf"))
	s.cmd.Dir = s.Dir
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	setParentDeathSignal(s.cmd)
	// The parent-death signal is tied to the thread that forks named:
	// locked while starting, that thread is not one the runtime is about
	// to end.
	runtime.LockOSThread()
	err := s.cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("start %s: %w", named, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.waitAnswers(ctx); err != nil {
		s.stop()
		return err
	}
	t.Cleanup(func() {
		if stopErr := s.stop(); stopErr != nil {
			t.Errorf("dnstest: stop named: %v", stopErr)
		}
		if t.Failed() {
			t.Logf("dnstest: named's output:\n%s", s.log.String())
		}
	})
	return nil
}

// writeFiles writes named.conf and the zone file into s.Dir. The
// configuration keeps every file named writes inside s.Dir (the zone's
// journal, the session key, managed keys) and turns off what a test
// server must not do: recursion, notifies, zone transfers, and the rndc
// control channel (by default on 127.0.0.1:953, which concurrent servers
// would fight over).
func (s *Server) writeFiles(port int) error {
	zoneFile := filepath.Join(s.Dir, strings.TrimSuffix(s.Zone, ".")+".zone")
	conf := fmt.Sprintf(`options {
	directory %[1]q;
	pid-file none;
	session-keyfile %[2]q;
	managed-keys-directory %[1]q;
	listen-on port %[3]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
	allow-transfer { none; };
};

controls { };

key %[4]q {
	algorithm %[5]s;
	secret %[6]q;
};

zone %[7]q {
	type primary;
	file %[8]q;
	update-policy {
		grant %[4]s zonesub ANY;
	};
};
`, s.Dir, filepath.Join(s.Dir, "session.key"), port, s.KeyName, s.KeyAlgorithm, s.Secret, s.Zone, zoneFile)

	zone := fmt.Sprintf(`$TTL 60
@	IN SOA	ns.%[1]s hostmaster.%[1]s 1 3600 600 86400 60
@	IN NS	ns.%[1]s
ns	IN A	127.0.0.1
`, s.Zone)

	if err := os.WriteFile(filepath.Join(s.Dir, "named.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	// The journal of an earlier attempt (another port) would be replayed.
	_ = os.Remove(zoneFile + ".jnl")
	return os.WriteFile(zoneFile, []byte(zone), 0o600)
}

// waitAnswers polls until named answers its zone's SOA, authoritatively,
// on UDP and on TCP; it fails at once when named exits.
func (s *Server) waitAnswers(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = s.answersSOA(ctx, "udp")
		if last == nil {
			last = s.answersSOA(ctx, "tcp")
			if last == nil {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("named exited: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("no SOA answer from %s within %s: %v", s.Addr, startTimeout, last)
		case <-tick.C:
		}
	}
}

// answersSOA asks named for its zone's SOA over network.
func (s *Server) answersSOA(ctx context.Context, network string) error {
	m := new(dns.Msg)
	m.SetQuestion(s.Zone, dns.TypeSOA)
	m.RecursionDesired = false
	c := &dns.Client{Net: network, Timeout: time.Second}
	r, _, err := c.ExchangeContext(ctx, m, s.Addr)
	switch {
	case err != nil:
		return err
	case r.Rcode != dns.RcodeSuccess:
		return fmt.Errorf("SOA over %s: %s", network, dns.RcodeToString[r.Rcode])
	case !r.Authoritative || len(r.Answer) == 0:
		return fmt.Errorf("SOA over %s: no authoritative answer", network)
	}
	return nil
}

// stop ends named: SIGTERM (it flushes its zone and exits), then SIGKILL
// after stopTimeout. Stopping a stopped server is a no-op.
func (s *Server) stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return fmt.Errorf("named did not exit within %s of SIGTERM: killed", stopTimeout)
}

// freePort returns a port that is free on 127.0.0.1 for both TCP and
// UDP, as named listens on both.
func freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue // UDP's side of the port is taken
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("no port free for both TCP and UDP after 20 tries")
}

// appArmorHint explains a start that failed on "permission denied" when
// AppArmor confines named: Debian's profile for /usr/sbin/named lets it
// read only /etc/bind and a few directories, not a test's temporary one.
func appArmorHint(output string) string {
	if !strings.Contains(strings.ToLower(output), "permission denied") {
		return ""
	}
	profiles, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil || !bytes.Contains(profiles, []byte("named (enforce)")) {
		return ""
	}
	return " (AppArmor enforces its profile for named, which forbids the test's directory: " +
		"`sudo aa-complain /usr/sbin/named` lets the tests run)"
}

// logBuffer is named's output, written by the process's copier and read
// by the test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
