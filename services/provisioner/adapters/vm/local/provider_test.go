package local_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/libs/pki"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/docker"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm/local"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
)

// The images the tests need, and the commands that build them.
func agentImage() string { return envOr("AGENT_IMAGE", local.DefaultImage) }
func demoImage() string  { return envOr("DEMO_IMAGE", "greenroom/demo-workspace:latest") }

func buildCommand(env, script string) string {
	if v := os.Getenv(env); v != "" {
		return env + "=" + v + " bash " + script
	}
	return "bash " + script
}

var (
	buildAgentImage = buildCommand("AGENT_IMAGE", "scripts/build-agent-image.sh")
	buildDemoImage  = buildCommand("DEMO_IMAGE", "scripts/build-demo-image.sh")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// hostClient is the host engine's client; the test fails when an image it
// needs is missing, naming the command that builds it.
func hostClient(t *testing.T, images map[string]string) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost(local.DefaultDockerEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for img, script := range images {
		if _, err := c.ImageInspect(ctx, img); err != nil {
			t.Fatalf("image %s: %v\nbuild it first, from the repository's root: %s", img, err, script)
		}
	}
	return c
}

func suffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testNetwork is a network of the test's own (removed at its end), so that
// tests running at once on the engine never share one.
func testNetwork(t *testing.T, host *client.Client) string {
	t.Helper()
	name := "greenroom-agents-test-" + suffix(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := host.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("name", name)})
		if err != nil {
			t.Errorf("cleanup: listing networks: %v", err)
			return
		}
		for _, n := range list.Items {
			if n.Name == name {
				if _, err := host.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
					t.Errorf("cleanup: removing network %s: %v", name, err)
				}
			}
		}
	})
	return name
}

// removeMachine removes, at the test's end, whatever of the machine named
// name is left.
func removeMachine(t *testing.T, host *client.Client, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cn := local.ContainerName(name)
		if _, err := host.ContainerRemove(ctx, cn, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: removing container %s: %v", cn, err)
		}
		if _, err := host.VolumeRemove(ctx, cn, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: removing volume %s: %v", cn, err)
		}
	})
}

// ca is a test CA with its client certificate.
type ca struct {
	cert, key           []byte
	clientCert, clientK []byte
}

func newCA(t *testing.T) ca {
	t.Helper()
	var c ca
	var err error
	if c.cert, c.key, err = pki.NewCA("greenroom local provider test CA"); err != nil {
		t.Fatal(err)
	}
	if c.clientCert, c.clientK, err = pki.Issue(c.cert, c.key, pki.Client, "greenroom-provisioner", nil, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	return c
}

// engineTLS is the TLS of the engine of the machine named name: its
// certificate names it by name only, since its address is not known yet.
func (c ca) engineTLS(t *testing.T, name string) autoscale.EngineTLS {
	t.Helper()
	cert, key, err := pki.Issue(c.cert, c.key, pki.Server, name, []string{name}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return autoscale.EngineTLS{CACert: c.cert, ServerCert: cert, ServerKey: key}
}

// tlsConfig is a client's: ServerName is the machine's name, the name its
// certificate has.
func (c ca) tlsConfig(t *testing.T, name string) *tls.Config {
	t.Helper()
	cfg, err := pki.ClientTLSConfig(c.cert, c.clientCert, c.clientK)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerName = name
	return cfg
}

// machineClient is a client of the machine's engine over tcp:// with cfg.
func machineClient(t *testing.T, m autoscale.Machine, cfg *tls.Config) *client.Client {
	t.Helper()
	c, err := client.New(
		client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}),
		client.WithHost(m.Endpoint()),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitEngine waits for the engine to answer c's ping, and returns the
// peer's certificate's fingerprint.
func waitEngine(ctx context.Context, t *testing.T, m autoscale.Machine, cfg *tls.Config) string {
	t.Helper()
	var seen *tls.ConnectionState
	cfg = cfg.Clone()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { seen = &cs; return nil }
	c := machineClient(t, m, cfg)
	var last error
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err == nil {
			sum, err := pki.Fingerprint(pemOf(seen.PeerCertificates[0].Raw))
			if err != nil {
				t.Fatal(err)
			}
			return sum
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the engine of %s never answered: %v", m.Endpoint(), last)
	return ""
}

func TestMachineLifecycle(t *testing.T) {
	host := hostClient(t, map[string]string{
		agentImage(): buildAgentImage,
		demoImage():  buildDemoImage,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	netName := testNetwork(t, host)
	name := "test-" + suffix(t)
	removeMachine(t, host, name)
	p, err := local.New(local.Config{Image: agentImage(), Network: netName, Cores: 1, MemoryMB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if p.Type() != "local_docker" {
		t.Errorf("Type %q", p.Type())
	}

	authority := newCA(t)
	spec := autoscale.MachineSpec{
		Name: name,
		// greenroom.managed and greenroom.session must not reach the
		// machine: the orphan collector would remove it.
		Labels: map[string]string{"greenroom.managed": "true", "greenroom.session": "x", "greenroom.agent": name, "greenroom.deployment": "test"},
		TLS:    authority.engineTLS(t, name),
	}

	start := time.Now()
	m, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Since(start)
	if !m.Address.IsValid() || m.ID == "" {
		t.Fatalf("machine %+v", m)
	}
	fp := waitEngine(ctx, t, m, authority.tlsConfig(t, name))
	answered := time.Since(start)
	t.Logf("timing: Create %v, Create→engine answers over TLS %v (%s)", created.Round(time.Millisecond), answered.Round(time.Millisecond), m.Endpoint())
	if want, _ := pki.Fingerprint(spec.TLS.ServerCert); fp != want {
		t.Errorf("the engine's certificate %s, want the spec's %s", fp, want)
	}

	t.Run("the container", func(t *testing.T) {
		in, err := host.ContainerInspect(ctx, m.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := in.Container
		if c.Name != "/greenroom-machine-"+name {
			t.Errorf("name %s", c.Name)
		}
		labels := c.Config.Labels
		if labels["greenroom.machine"] != name || labels["greenroom.agent"] != name || labels["greenroom.deployment"] != "test" {
			t.Errorf("labels %v", labels)
		}
		for _, l := range []string{"greenroom.managed", "greenroom.session"} {
			if _, ok := labels[l]; ok {
				t.Errorf("the machine has the label %s", l)
			}
		}
		if c.HostConfig.NanoCPUs != 1e9 || c.HostConfig.Memory != 1024<<20 {
			t.Errorf("limits: %d nano CPUs, %d bytes", c.HostConfig.NanoCPUs, c.HostConfig.Memory)
		}
		ep := c.NetworkSettings.Networks[netName]
		if ep == nil || ep.IPAddress != m.Address {
			t.Errorf("address on %s: %+v, want %s", netName, ep, m.Address)
		}
		var vol bool
		for _, mp := range c.Mounts {
			vol = vol || (mp.Name == "greenroom-machine-"+name && mp.Destination == "/var/lib/docker")
		}
		if !vol {
			t.Errorf("no volume greenroom-machine-%s on /var/lib/docker: %+v", name, c.Mounts)
		}
		n, err := host.NetworkInspect(ctx, netName, client.NetworkInspectOptions{})
		if err != nil || n.Network.Labels["greenroom.vm_network"] != "true" || n.Network.Driver != "bridge" {
			t.Errorf("network %s: %+v, %v", netName, n.Network, err)
		}
		// The engine's --mtu (the default bridge's) holds on the network.
		const mtu = "com.docker.network.driver.mtu"
		if def, err := host.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{}); err == nil && n.Network.Options[mtu] != def.Network.Options[mtu] {
			t.Errorf("network %s: MTU %q, the default bridge's %q", netName, n.Network.Options[mtu], def.Network.Options[mtu])
		}
	})

	mc := machineClient(t, m, authority.tlsConfig(t, name))
	t.Run("the engine", func(t *testing.T) {
		info, err := mc.Info(ctx, client.InfoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// overlay2 works on the volume (ext4 here); vfs would copy every
		// layer of every image.
		if info.Info.Driver != "overlay2" {
			t.Errorf("storage driver %s, want overlay2", info.Info.Driver)
		}
		if info.Info.Name != name {
			t.Errorf("engine name %q, want %q", info.Info.Name, name)
		}
		t.Logf("nested engine %s: %s, %s on %v, cgroups %s %s, %d CPUs, %d MB", info.Info.Name, info.Info.ServerVersion, info.Info.Driver,
			info.Info.DriverStatus, info.Info.CgroupDriver, info.Info.CgroupVersion, info.Info.NCPU, info.Info.MemTotal>>20)
	})

	t.Run("refused without a certificate of the CA", func(t *testing.T) {
		noCert := authority.tlsConfig(t, name)
		noCert.Certificates = nil
		stranger := newCA(t).tlsConfig(t, name)
		stranger.RootCAs = noCert.RootCAs // it trusts the engine, the engine does not trust it
		for what, cfg := range map[string]*tls.Config{"no certificate": noCert, "another CA's certificate": stranger} {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := machineClient(t, m, cfg).Ping(pctx, client.PingOptions{})
			cancel()
			if err == nil {
				t.Errorf("%s: the engine answered", what)
			} else {
				t.Logf("%s: %v", what, err)
			}
		}
		// Nor does a client that expects another engine's name.
		other := authority.tlsConfig(t, "another-agent")
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := machineClient(t, m, other).Ping(pctx, client.PingOptions{}); err == nil || !strings.Contains(err.Error(), "certificate is valid for "+name) {
			t.Errorf("client expecting another-agent: %v, want a name mismatch", err)
		}
	})

	t.Run("Create again finds it", func(t *testing.T) {
		before, _ := host.ContainerInspect(ctx, m.ID, client.ContainerInspectOptions{})
		again, err := p.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if again != m {
			t.Errorf("Create again: %+v, want %+v", again, m)
		}
		after, _ := host.ContainerInspect(ctx, m.ID, client.ContainerInspectOptions{})
		if before.Container.State.StartedAt != after.Container.State.StartedAt {
			t.Errorf("Create of an unchanged machine restarted it (%s, then %s)", before.Container.State.StartedAt, after.Container.State.StartedAt)
		}
	})

	t.Run("Create again with a new certificate", func(t *testing.T) {
		// As after a crash of the autoscaler between issuing and
		// recording: the machine serves the new certificate.
		renewed := spec
		renewed.TLS = authority.engineTLS(t, name)
		start := time.Now()
		again, err := p.Create(ctx, renewed)
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != m.ID {
			t.Errorf("Create with a new certificate made another machine: %s, want %s", again.ID, m.ID)
		}
		got := waitEngine(ctx, t, again, authority.tlsConfig(t, name))
		if want, _ := pki.Fingerprint(renewed.TLS.ServerCert); got != want {
			t.Errorf("the engine serves %s, want the renewed certificate %s", got, want)
		}
		t.Logf("timing: restart with the new certificate, to the engine answering: %v", time.Since(start).Round(time.Millisecond))
		m, spec = again, renewed
	})

	t.Run("Create starts a stopped machine", func(t *testing.T) {
		timeout := 0
		if _, err := host.ContainerStop(ctx, m.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		again, err := p.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != m.ID {
			t.Errorf("Create of a stopped machine made another: %s, want %s", again.ID, m.ID)
		}
		waitEngine(ctx, t, again, authority.tlsConfig(t, name))
		m = again
	})

	demo := demoImage()
	t.Run("CopyImages", func(t *testing.T) {
		if _, err := docker.CopyImages(ctx, host, mc, []string{"greenroom/no-such-image:latest"}); err == nil || !strings.Contains(err.Error(), "greenroom/no-such-image:latest") {
			t.Errorf("copying a missing image: %v, want an error naming it", err)
		}
		start := time.Now()
		copied, err := docker.CopyImages(ctx, host, mc, []string{demo, demo})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if !slices.Equal(copied, []string{demo}) {
			t.Errorf("copied %v, want [%s]", copied, demo)
		}
		hostImg, _ := host.ImageInspect(ctx, demo)
		nestedImg, err := mc.ImageInspect(ctx, demo)
		if err != nil || nestedImg.ID != hostImg.ID {
			t.Errorf("the machine's %s: %s, %v; the host's is %s", demo, nestedImg.ID, err, hostImg.ID)
		}
		start = time.Now()
		copied, err = docker.CopyImages(ctx, host, mc, []string{demo})
		if err != nil || len(copied) != 0 {
			t.Errorf("copying again: %v, %v; want nothing copied", copied, err)
		}
		t.Logf("timing: CopyImages of %s (%d MB) %v; again (present) %v", demo, hostImg.Size>>20, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	})

	t.Run("a session published on the machine's address", func(t *testing.T) {
		// As the provisioner makes sessions: the port published on the
		// machine's address, reached from this host.
		port, _ := network.ParsePort("8080/tcp")
		res, err := mc.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:   "session-" + suffix(t),
			Config: &container.Config{Image: demo, Env: []string{"GREENROOM_DEMO_INIT_DELAY=1s"}, ExposedPorts: network.PortSet{port: {}}},
			HostConfig: &container.HostConfig{
				PortBindings: network.PortMap{port: {{HostIP: m.Address, HostPort: ""}}},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := mc.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		in, err := mc.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bindings := in.Container.NetworkSettings.Ports[port]
		if len(bindings) == 0 {
			t.Fatalf("port 8080 not published: %+v", in.Container.NetworkSettings.Ports)
		}
		hostPort, _ := strconv.Atoi(bindings[0].HostPort)
		url := "http://" + netip.AddrPortFrom(m.Address, uint16(hostPort)).String() + "/"
		var last string
		for ctx.Err() == nil {
			resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Logf("timing: GET %s answered %d (%d bytes) %v after the start", url, resp.StatusCode, len(body), time.Since(start).Round(time.Millisecond))
					return
				}
				last = fmt.Sprintf("status %d", resp.StatusCode)
			} else {
				last = err.Error()
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("GET %s never answered: %s", url, last)
	})

	t.Run("Delete", func(t *testing.T) {
		start := time.Now()
		if err := p.Delete(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		t.Logf("timing: Delete %v", time.Since(start).Round(time.Millisecond))
		if _, err := host.ContainerInspect(ctx, m.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("the container after Delete: %v", err)
		}
		if _, err := host.VolumeInspect(ctx, local.ContainerName(name), client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
			t.Errorf("the volume after Delete: %v", err)
		}
		if err := p.Delete(ctx, m.ID); err != nil {
			t.Errorf("Delete again: %v", err)
		}
	})
}

// TestDeleteRefusesOtherContainers: Delete is given ids; one that is not a
// machine's is left alone.
func TestDeleteRefusesOtherContainers(t *testing.T) {
	host := hostClient(t, map[string]string{agentImage(): buildAgentImage})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "greenroom-not-a-machine-" + suffix(t)
	res, err := host.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &container.Config{Image: agentImage()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = host.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	})
	p, err := local.New(local.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Delete(ctx, res.ID); err == nil || !strings.Contains(err.Error(), "is not a machine") {
		t.Errorf("Delete of %s: %v, want a refusal", name, err)
	}
	if _, err := host.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("the container after the refused Delete: %v", err)
	}
	if err := p.Delete(ctx, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); err != nil {
		t.Errorf("Delete of an id that never was: %v", err)
	}
}

// TestCreateRefusesBadSpecs: what the engine could not start with is
// refused before anything is made.
func TestCreateRefusesBadSpecs(t *testing.T) {
	t.Parallel()
	p, err := local.New(local.Config{DockerEndpoint: "unix:///nonexistent/docker.sock"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	authority := newCA(t)
	good := autoscale.MachineSpec{Name: "agent-1", TLS: authority.engineTLS(t, "agent-1")}
	other := authority.engineTLS(t, "agent-1")
	for what, tc := range map[string]struct {
		edit func(*autoscale.MachineSpec)
		want string
	}{
		"bad name":       {func(s *autoscale.MachineSpec) { s.Name = "agent/1" }, "not a valid Docker name"},
		"GPUs":           {func(s *autoscale.MachineSpec) { s.GPUs = 1 }, "1 GPUs asked"},
		"negative cores": {func(s *autoscale.MachineSpec) { s.Cores = -1 }, "negative size"},
		"no CA":          {func(s *autoscale.MachineSpec) { s.TLS.CACert = nil }, "TLS CA certificate"},
		"mismatched key": {func(s *autoscale.MachineSpec) { s.TLS.ServerKey = other.ServerKey }, "TLS server certificate and key"},
	} {
		spec := good
		tc.edit(&spec)
		_, err := p.Create(context.Background(), spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", what, err, tc.want)
		}
	}
}

func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
