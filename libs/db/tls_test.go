package db_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/apptest"
	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/events"
	"github.com/greenroom-dev/greenroom/libs/natstest"
	"github.com/greenroom-dev/greenroom/libs/outbox"
	"github.com/greenroom-dev/greenroom/libs/settings"
	"github.com/greenroom-dev/greenroom/libs/tlstest"
)

// TestPostgresOverTLSRequiresTheClientCertificate runs a PostgreSQL
// server of the test's own whose only pg_hba.conf entry is
// `hostssl ... cert clientcert=verify-full` (TLS, and a client certificate
// signed by the test's CA whose common name is the role), and connects to
// it as the services do: db.Open with a verify-full URL, the migrations,
// and the outbox relay's LISTEN connection (pq.NewListener, same URL),
// through app.Connect with NATS over TLS too.
func TestPostgresOverTLSRequiresTheClientCertificate(t *testing.T) {
	// No ~/.postgresql/postgresql.crt may stand in for a missing sslcert.
	t.Setenv("HOME", t.TempDir())
	pg := startTLSPostgres(t)
	good := pg.url(map[string]string{"sslmode": "verify-full", "sslrootcert": pg.ca.File, "sslcert": pg.client.Cert, "sslkey": pg.client.Key})

	t.Run("verify-full with the client certificate connects, migrates and queries", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn, err := db.Open(ctx, good, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := db.Migrate(ctx, conn.DB); err != nil {
			t.Fatal(err)
		}
		var tlsOn bool
		var version, clientDN string
		if err := conn.QueryRowContext(ctx, `SELECT ssl, version, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&tlsOn, &version, &clientDN); err != nil {
			t.Fatal(err)
		}
		if !tlsOn || (version != "TLSv1.2" && version != "TLSv1.3") || !strings.Contains(clientDN, "CN=greenroom") {
			t.Fatalf("connection: ssl %v, version %q, client %q", tlsOn, version, clientDN)
		}
		var sessions int
		if err := conn.GetContext(ctx, &sessions, `SELECT count(*) FROM sessions`); err != nil || sessions != 0 {
			t.Fatalf("query on a migrated table: %d %v", sessions, err)
		}
	})

	t.Run("the outbox relay listens over the same TLS URL", func(t *testing.T) {
		// A service's connections, both over TLS with client certificates.
		nats := pg.ca.Server(t, "nats", "127.0.0.1")
		natsClient := pg.ca.Client(t, "greenroom-nats")
		srv := natstest.StartWith(t, natstest.TLSOptions(t, nats.Cert, nats.Key, pg.ca.File))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		deps, err := app.Connect(ctx, "test", settings.Common{DatabaseURL: good, NatsURL: srv.ClientURL(),
			NatsTLS:        settings.NatsTLS{CA: pg.ca.File, Cert: natsClient.Cert, Key: natsClient.Key},
			StreamReplicas: 1, ShutdownTimeout: 10 * time.Second,
		}, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer deps.Close()
		// Polling once an hour: only a notification on the LISTEN
		// connection makes it publish in time.
		relay := outbox.NewRelay(outbox.RelayConfig{DatabaseURL: deps.Settings.DatabaseURL, PollInterval: time.Hour}, deps.DB, deps.Publisher, deps.Log)
		relay.TestSignals.Init()
		apptest.Start(t, relay)
		rec := apptest.NewRecorder(t, deps.NC)
		relay.TestSignals.PassDone.WaitOrTimeout(t, 30*time.Second) // LISTEN registered
		ev, err := events.New("greenroom/test", events.TypeConfigChanged, events.ConfigChanged{Kind: "zone", Op: "created", ID: "0190c0de-0000-7000-8000-0000000000f1", Name: "tls"})
		if err != nil {
			t.Fatal(err)
		}
		if err := outbox.Enqueue(ctx, deps.DB, "greenroom.config.changed.zone", ev, ""); err != nil {
			t.Fatal(err)
		}
		rec.Wait(t, "greenroom.config.changed.zone", "", 10*time.Second)
	})

	// Each refusal: db.Open gives up after its connect timeout with the
	// server's or the TLS library's reason.
	other := tlstest.NewCA(t, filepath.Join(pg.dir, "other"), "other-ca")
	otherClient := other.Client(t, "greenroom")
	for _, c := range []struct {
		name   string
		params map[string]string
		// want: the error says one of these.
		want []string
	}{
		// The server refuses a client certificate in the TLS 1.3
		// handshake after the client has sent its first bytes, so the
		// client sees the refusal as an alert naming the certificate or,
		// by timing, as the connection reset.
		{"without the client certificate it is refused",
			map[string]string{"sslmode": "verify-full", "sslrootcert": pg.ca.File}, []string{"certificate", "connection reset", "broken pipe", "EOF"}},
		{"with a client certificate of another CA it is refused",
			map[string]string{"sslmode": "verify-full", "sslrootcert": pg.ca.File, "sslcert": otherClient.Cert, "sslkey": otherClient.Key},
			[]string{"certificate", "connection reset", "broken pipe", "EOF"}},
		{"with a CA that did not sign the server it is refused",
			map[string]string{"sslmode": "verify-full", "sslrootcert": other.File, "sslcert": pg.client.Cert, "sslkey": pg.client.Key}, []string{"unknown authority"}},
		{"without TLS it is refused",
			map[string]string{"sslmode": "disable"}, []string{"no encryption"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := db.Open(ctx, pg.url(c.params), time.Second)
			if err == nil {
				_ = conn.Close()
				t.Fatal("connected")
			}
			t.Logf("refused: %v", err)
			if !slices.ContainsFunc(c.want, func(w string) bool { return strings.Contains(err.Error(), w) }) {
				t.Fatalf("error %q says none of %q", err, c.want)
			}
		})
	}

	t.Run("a TLS file the URL names that cannot be read is an error at once", func(t *testing.T) {
		missing := filepath.Join(pg.dir, "missing.pem")
		started := time.Now()
		_, err := db.Open(context.Background(), pg.url(map[string]string{"sslmode": "verify-full", "sslrootcert": pg.ca.File, "sslcert": missing, "sslkey": pg.client.Key}), 30*time.Second)
		if err == nil || !strings.Contains(err.Error(), "sslcert") || !strings.Contains(err.Error(), missing) {
			t.Fatalf("error %v, want one naming sslcert and the file", err)
		}
		if d := time.Since(started); d > 5*time.Second {
			t.Fatalf("took %s: retried a missing file", d)
		}
	})
}

// tlsPostgres is a throwaway PostgreSQL server (initdb in a temporary
// directory, on a free loopback port, as user postgres when the test runs
// as root: PostgreSQL refuses to run as root) that accepts only TLS
// connections with a client certificate of ca. The machine's own server
// is never touched.
type tlsPostgres struct {
	dir    string
	port   int
	ca     *tlstest.CA
	client tlstest.Pair // CN=greenroom, the role
}

// postgresBinDir is Debian's PostgreSQL 15, which scripts/ensure-postgres.sh
// installs on this machine; a newer major version or PATH also does.
const postgresBinDir = "/usr/lib/postgresql/15/bin"

func postgresBin(t *testing.T) string {
	t.Helper()
	dirs := []string{postgresBinDir}
	others, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(others, func(i, j int) bool { return version(others[i]) > version(others[j]) })
	dirs = append(dirs, others...)
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d
		}
	}
	t.Fatalf("PostgreSQL server binaries (initdb, postgres) not found in %s, /usr/lib/postgresql/*/bin or PATH: "+
		"this test runs a PostgreSQL server of its own; scripts/ensure-postgres.sh installs them (apt-get install postgresql)", postgresBinDir)
	return ""
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// postgresUser is who the server runs as: user postgres when the test
// runs as root, else the test's own user (nil).
func postgresUser(t *testing.T) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root, and no user postgres to run PostgreSQL as (scripts/ensure-postgres.sh installs PostgreSQL, which makes it): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

func startTLSPostgres(t *testing.T) *tlsPostgres {
	t.Helper()
	bin := postgresBin(t)
	cred := postgresUser(t)
	// Not t.TempDir: its parent is private to the test's user, and the
	// server's user must reach its files.
	dir, err := os.MkdirTemp("", "greenroom-pgtls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) }) // after the server stops (cleanups run last first)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	chown := func(path string) {
		if cred != nil {
			if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}

	pg := &tlsPostgres{dir: dir, ca: tlstest.NewCA(t, filepath.Join(dir, "tls"), "ca")}
	pg.client = pg.ca.Client(t, "greenroom")
	server := pg.ca.Server(t, "postgres", "127.0.0.1", "localhost")
	chown(server.Key) // PostgreSQL wants its key its own, mode 600

	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	chown(data)
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "greenroom", "-A", "reject", "-N", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	hba := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte("# TLS with a client certificate of the test's CA, nothing else.\n"+
		"hostssl all greenroom 127.0.0.1/32 cert clientcert=verify-full\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	pg.port = freePort(t)
	logFile := filepath.Join(dir, "postgres.log")
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(pg.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "hba_file="+hba,
		"-c", "ssl=on", "-c", "ssl_cert_file="+server.Cert, "-c", "ssl_key_file="+server.Key, "-c", "ssl_ca_file="+pg.ca.File,
		"-c", "ssl_min_protocol_version=TLSv1.2", "-c", "fsync=off", "-c", "full_page_writes=off")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
	// Its own process group, killed with the test binary if that dies
	// first, so that no server outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting postgres: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown: the data is thrown away
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	// Ready: a connection with the client certificate succeeds.
	ready := pg.url(map[string]string{"sslmode": "verify-full", "sslrootcert": pg.ca.File, "sslcert": pg.client.Cert, "sslkey": pg.client.Key, "connect_timeout": "2"})
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ping(ready)
		if err == nil {
			return pg
		}
		select {
		case <-exited:
			t.Fatalf("postgres exited: %s", readLog(logFile))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not ready after 30s: %v\n%s", err, readLog(logFile))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// url is the server's URL as role greenroom with params.
func (pg *tlsPostgres) url(params map[string]string) string {
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	return (&url.URL{Scheme: "postgres", User: url.User("greenroom"), Host: fmt.Sprintf("127.0.0.1:%d", pg.port),
		Path: "/postgres", RawQuery: q.Encode()}).String()
}

func ping(dsn string) error {
	conn, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return conn.PingContext(ctx)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(bytes.TrimSpace(b))
}
