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
