package bench

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/greenroom-dev/greenroom/libs/db"
	"github.com/greenroom-dev/greenroom/libs/dbtest"
)

// Machine describes where the figures were measured.
type Machine struct {
	Cores           int    `json:"cores"`
	CPUModel        string `json:"cpu_model,omitempty"`
	MemoryBytes     int64  `json:"memory_bytes"`
	Kernel          string `json:"kernel"`
	DockerVersion   string `json:"docker_engine_version"`
	GoVersion       string `json:"go_version"`
	PostgresVersion string `json:"postgresql_version"`
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemoryBytes = kb * 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output(); err == nil {
		m.DockerVersion = strings.TrimSpace(string(out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := db.Open(ctx, dbtest.AdminURL(), 5*time.Second); err == nil {
		var v string
		if conn.GetContext(ctx, &v, "SHOW server_version") == nil {
			m.PostgresVersion = "PostgreSQL " + v
		}
		_ = conn.Close()
	}
	return m
}

// waitQuiet waits, up to limit, until the machine's CPUs were at most
// busy (a fraction, over every CPU) in two samples in a row, 250 ms
// apart, so that a timed burst does not share the CPU with what the
// previous step left running (containers starting, a pool refilling). It
// says so in a note when the machine never got that quiet.
func waitQuiet(busy float64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	prevBusy, prevTotal, ok := cpuTicks()
	calm := 0
	last := 1.0
	for ok && time.Now().Before(deadline) && !interrupted() {
		time.Sleep(250 * time.Millisecond)
		b, t, ok2 := cpuTicks()
		if !ok2 || t == prevTotal {
			return
		}
		last = float64(b-prevBusy) / float64(t-prevTotal)
		prevBusy, prevTotal = b, t
		if last <= busy {
			if calm++; calm == 2 {
				return
			}
		} else {
			calm = 0
		}
	}
	if ok {
		note("the machine stayed %.0f%% busy for %s before a timed step (wanted ≤ %.0f%%)", last*100, limit, busy*100)
	}
}

// cpuTicks reads the busy and total ticks of every CPU from /proc/stat.
func cpuTicks() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, true
}
