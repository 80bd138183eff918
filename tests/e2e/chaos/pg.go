package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// privatePG is a PostgreSQL server of the run's own (initdb in the work
// directory, on a free loopback port), for the faults that restart the
// server: the machine's server is shared with other test runs, which a
// restart would break. It runs as a child process (as user postgres when
// this program is root: PostgreSQL refuses to run as root).
type privatePG struct {
	dir  string
	port int
	proc *proc
}

// pgBin finds the newest PostgreSQL server binaries (Debian's layout, or
// PATH).
func pgBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb) found; scripts/ensure-postgres.sh installs them")
}

// credential is who PostgreSQL runs as: user postgres when this program is
// root, else this user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and no user postgres to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startPrivatePG(ctx context.Context, workDir string) (*privatePG, error) {
	bin, err := pgBin()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	pg := &privatePG{dir: filepath.Join(workDir, "pg")}
	if err := os.Chmod(workDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(pg.dir, 0o700); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(pg.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", pg.dir, "-U", "greenroom", "-A", "trust", "-N")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = pg.dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if pg.port, err = freePort(); err != nil {
		return nil, err
	}
	pg.proc = &proc{name: "postgres", path: filepath.Join(bin, "postgres"),
		args: []string{"-D", pg.dir, "-p", strconv.Itoa(pg.port), "-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=" + pg.dir, "-c", "max_connections=300", "-c", "fsync=off"},
		env: os.Environ(), log: filepath.Join(workDir, "logs", "postgres.log"), cred: cred}
	if err := pg.start(ctx); err != nil {
		return nil, err
	}
	return pg, nil
}

func (pg *privatePG) url() string {
	return fmt.Sprintf("postgres://greenroom@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

// start starts the server and waits until it accepts connections.
func (pg *privatePG) start(ctx context.Context) error {
	if err := pg.proc.start(); err != nil {
		return err
	}
	return poll(ctx, 60*time.Second, "PostgreSQL", func() bool {
		if !pg.proc.running() {
			return false
		}
		db, err := sql.Open("postgres", pg.url())
		if err != nil {
			return false
		}
		defer db.Close()
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return db.PingContext(c) == nil
	})
}

// crash stops the server as a crash does (SIGQUIT: immediate shutdown, no
// checkpoint; the next start recovers from the WAL).
func (pg *privatePG) crash() {
	_ = pg.proc.signal(syscall.SIGQUIT)
	if _, ok := pg.proc.wait(30 * time.Second); !ok {
		pg.proc.kill9()
	}
}

func (pg *privatePG) stop() {
	if pg == nil || pg.proc == nil {
		return
	}
	_ = pg.proc.signal(syscall.SIGQUIT)
	if _, ok := pg.proc.wait(10 * time.Second); !ok {
		pg.proc.kill9()
	}
}
