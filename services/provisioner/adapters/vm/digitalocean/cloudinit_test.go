package digitalocean_test

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm/digitalocean"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm/digitalocean/dotest"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
)

// TestUserDataSentIsTheCloudConfig reads the user data of the create the
// stand-in received back into CloudConfig.
func TestUserDataSentIsTheCloudConfig(t *testing.T) {
	s, p := start(t, dotest.Options{}, nil)
	sp := spec(t, "agent-1")
	if _, err := p.Create(t.Context(), sp); err != nil {
		t.Fatal(err)
	}
	var userData string
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost {
			c, err := r.Create()
			if err != nil {
				t.Fatal(err)
			}
			userData = c.UserData
		}
	}
	if !strings.HasPrefix(userData, "#cloud-config\n") {
		t.Fatalf("user data does not begin with #cloud-config:\n%s", userData)
	}
	var cfg digitalocean.CloudConfig
	if err := yaml.Unmarshal([]byte(userData), &cfg); err != nil {
		t.Fatalf("user data is not YAML: %v\n%s", err, userData)
	}
	// Every key of the document is one CloudConfig knows.
	var keys map[string]any
	if err := yaml.Unmarshal([]byte(userData), &keys); err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		if !slices.Contains([]string{"package_update", "packages", "write_files", "runcmd"}, k) {
			t.Errorf("unexpected key %s", k)
		}
	}
	if !cfg.PackageUpdate || !slices.Equal(cfg.Packages, []string{"docker.io"}) {
		t.Fatalf("packages: update %v, %v", cfg.PackageUpdate, cfg.Packages)
	}
	for path, want := range map[string]struct {
		content []byte
		perm    string
	}{
		"/etc/docker/tls/ca.pem":   {sp.TLS.CACert, "0644"},
		"/etc/docker/tls/cert.pem": {sp.TLS.ServerCert, "0644"},
		"/etc/docker/tls/key.pem":  {sp.TLS.ServerKey, "0600"},
	} {
		f, ok := cfg.File(path)
		if !ok {
			t.Fatalf("no %s in write_files", path)
		}
		if f.Content != string(want.content) || f.Permissions != want.perm || f.Owner != "root:root" {
			t.Errorf("%s: permissions %q owner %q, content as given %v", path, f.Permissions, f.Owner, f.Content == string(want.content))
		}
	}
	dropIn, ok := cfg.File("/etc/systemd/system/docker.service.d/greenroom.conf")
	if !ok {
		t.Fatal("no docker.service drop-in in write_files")
	}
	execStart := serviceLines(dropIn.Content, "ExecStart")
	if len(execStart) != 2 || execStart[0] != "" {
		t.Fatalf("drop-in ExecStart lines %q: want an empty one, then dockerd's", execStart)
	}
	for _, flag := range []string{
		"/usr/sbin/dockerd ", "-H fd://", "-H tcp://0.0.0.0:2376", "--tlsverify",
		"--tlscacert=/etc/docker/tls/ca.pem", "--tlscert=/etc/docker/tls/cert.pem", "--tlskey=/etc/docker/tls/key.pem",
	} {
		if !strings.Contains(execStart[1], flag) {
			t.Errorf("dockerd's command line %q has no %q", execStart[1], flag)
		}
	}
	if post := serviceLines(dropIn.Content, "ExecStartPost"); len(post) != 1 || !strings.HasPrefix(post[0], "-") ||
		!strings.Contains(post[0], "DOCKER-USER -d 169.254.169.254/32 -j DROP") {
		t.Errorf("drop-in ExecStartPost %q: want the metadata service blocked, its failure ignored", post)
	}
	if !slices.Equal(cfg.RunCmd, []string{"systemctl daemon-reload", "systemctl restart docker"}) {
		t.Fatalf("runcmd %q", cfg.RunCmd)
	}
}

func TestUserDataNeedsTheTLSMaterial(t *testing.T) {
	sp := spec(t, "agent-1")
	sp.TLS.ServerKey = nil
	if _, err := digitalocean.UserData(sp); err == nil || !strings.Contains(err.Error(), "server key") {
		t.Fatalf("UserData without a key: %v", err)
	}
	s, p := start(t, dotest.Options{}, nil)
	if _, err := p.Create(t.Context(), autoscale.MachineSpec{Name: "agent-1"}); err == nil {
		t.Fatal("Create without TLS material succeeded")
	}
	if len(s.Requests()) != 0 {
		t.Fatal("Create without TLS material called the API")
	}
}

// TestDropInOverridesDebiansUnit checks the drop-in against the
// docker.service of Debian's docker.io installed here, when it is: it must
// clear the unit's ExecStart, and run the unit's own command line (Debian
// 12's, DebianExecStart) with the TLS flags added.
func TestDropInOverridesDebiansUnit(t *testing.T) {
	const unit = "/lib/systemd/system/docker.service"
	b, err := os.ReadFile(unit)
	if os.IsNotExist(err) {
		t.Skipf("%s: Debian's docker.io is not installed here", unit)
	}
	if err != nil {
		t.Fatal(err)
	}
	unitExec := serviceLines(string(b), "ExecStart")
	if len(unitExec) != 1 {
		t.Fatalf("%s has ExecStart lines %q", unit, unitExec)
	}
	if unitExec[0] != digitalocean.DebianExecStart {
		t.Fatalf("%s runs %q; the drop-in assumes Debian 12's %q", unit, unitExec[0], digitalocean.DebianExecStart)
	}
	if !strings.Contains(string(b), "Type=notify") {
		t.Fatalf("%s is not Type=notify", unit)
	}
	drop := serviceLines(digitalocean.DropIn(), "ExecStart")
	// A Type=notify service takes one ExecStart: the drop-in's first must
	// clear the unit's.
	if len(drop) != 2 || drop[0] != "" {
		t.Fatalf("drop-in ExecStart lines %q: the first must be empty", drop)
	}
	if want := unitExec[0] + " " + strings.Join(digitalocean.DockerdTLSFlags, " "); drop[1] != want {
		t.Fatalf("drop-in runs %q, want %q", drop[1], want)
	}

	// systemd itself loads the unit with the drop-in (it refuses a second
	// ExecStart of a Type=notify service, and a command it cannot parse).
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Logf("systemd-analyze is not installed: the unit is not verified by systemd")
		return
	}
	dir := t.TempDir()
	for _, name := range []string{"docker.service", "docker.socket"} {
		b, err := os.ReadFile(filepath.Join("/lib/systemd/system", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "docker.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docker.service.d", "greenroom.conf"), []byte(digitalocean.DropIn()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), analyze, "verify", filepath.Join(dir, "docker.service"))
	// The trailing ":" keeps systemd's own directories after dir.
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUserDataPassesCloudInitSchema checks the user data with Debian 12's
// cloud-init (the one debian-12-x64 runs), when it is installed here.
func TestUserDataPassesCloudInitSchema(t *testing.T) {
	cloudInit, err := exec.LookPath("cloud-init")
	if err != nil {
		t.Skip("cloud-init is not installed here (apt-get install cloud-init)")
	}
	ud, err := digitalocean.UserData(spec(t, "agent-1"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(file, []byte(ud), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), cloudInit, "schema", "--config-file", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
		t.Fatalf("cloud-init schema: %v\n%s", err, out)
	}
}

// serviceLines returns the values of key in the [Service] section of a
// systemd unit's text, in order.
func serviceLines(text, key string) []string {
	var out []string
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
				out = append(out, strings.TrimSpace(v))
			}
		}
	}
	return out
}
