// Package local is the autoscaler's local VM provider (type local_docker):
// each machine is a separate Docker Engine on this host, a container of
// the agent engine image (images/agent-engine, built by
// scripts/build-agent-image.sh: Debian bookworm with Debian's docker.io)
// running dockerd, with its own data root on a named volume, on a bridge
// network of the host engine. Its engine listens on
// tcp://<its address>:2376 with --tlsverify: the certificate and key of
// the spec's TLS, client certificates verified against the spec's CA.
//
// The machine's address is known only once it exists, after the spec and
// its certificate were made: the engine's certificate names the machine by
// a DNS name, its spec.Name, and clients verify it with
// tls.Config.ServerName set to that name (the address is in it too only
// when the caller knew it, e.g. for a certificate issued again later).
//
// The container is not privileged: Docker's privileged mode asks for every
// capability, and fails where the host's bounding set lacks one (on some
// hosted VMs, CAP_SYS_RESOURCE). It gets every capability but
// CAP_SYS_RESOURCE, no seccomp or AppArmor profile, no masked /proc paths,
// and a private cgroup namespace, so that the engine's containers are
// cgroups under the machine's own and its CPU and memory limits bound them;
// the image's entrypoint makes /sys and the cgroup mounts writable.
package local

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/libs/pki"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
)

// Labels the provider puts on what it makes. A machine never carries
// greenroom.managed or greenroom.session (removed from the spec's labels):
// make down and the orphan collector remove containers labelled so.
const (
	// LabelMachine is on a machine's container and volume: the machine's
	// name (spec.Name).
	LabelMachine = "greenroom.machine"
	// LabelVMNetwork is on the network the provider made.
	LabelVMNetwork = "greenroom.vm_network"
)

// Names of what the provider makes for a machine.
const (
	// NamePrefix + spec.Name is the machine's container and volume.
	NamePrefix = "greenroom-machine-"
	// TLSDir is where the engine's ca.pem, cert.pem and key.pem are.
	TLSDir = "/etc/docker/tls"
	// DataRoot is the engine's data root, the machine's volume.
	DataRoot = "/var/lib/docker"
)

// Labels of the spec that are never put on a machine.
var droppedLabels = []string{"greenroom.managed", "greenroom.session"}

// addressPoll is how often Create looks for the machine's address while
// the network has not given it one.
const addressPoll = 100 * time.Millisecond

// Provider makes machines on the engine of Config.DockerEndpoint. It is
// safe for concurrent use.
type Provider struct {
	cfg Config
	c   *client.Client
	// netMu serialises making the network: the engine (API 1.41) makes a
	// second network of the same name when asked at once.
	netMu sync.Mutex
}

var _ autoscale.Provider = (*Provider)(nil)

// New returns the provider of c (defaults applied). The engine is first
// contacted by the first Create or Delete.
func New(c Config) (*Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s provider: %w", Type, err)
	}
	c = c.WithDefaults()
	cl, err := client.New(client.WithHost(c.DockerEndpoint))
	if err != nil {
		return nil, fmt.Errorf("%s provider: docker client for %s: %w", Type, c.DockerEndpoint, err)
	}
	return &Provider{cfg: c, c: cl}, nil
}

// Config is the provider's config, defaults applied.
func (p *Provider) Config() Config { return p.cfg }

// Close closes the provider's Docker client.
func (p *Provider) Close() error { return p.c.Close() }

// Type is local_docker.
func (p *Provider) Type() string { return Type }

// ContainerName is the name of the container (and volume) of the machine
// named name.
func ContainerName(name string) string { return NamePrefix + name }

var hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// Create makes the machine of spec, or finds the one named spec.Name:
// a container greenroom-machine-<name> (started if it was stopped) that
// runs the engine with spec.TLS, with its data root on the volume of the
// same name. A machine found with other TLS material than spec's gets
// spec's and is restarted. It returns once the machine has its address on
// the network; its engine answers a moment later (about a second).
func (p *Provider) Create(ctx context.Context, spec autoscale.MachineSpec) (autoscale.Machine, error) {
	if err := checkSpec(spec); err != nil {
		return autoscale.Machine{}, fmt.Errorf("creating machine %q: %w", spec.Name, err)
	}
	if err := p.ensureNetwork(ctx); err != nil {
		return autoscale.Machine{}, fmt.Errorf("creating machine %s: %w", spec.Name, err)
	}
	name := ContainerName(spec.Name)
	id, err := p.findMachine(ctx, spec)
	if err != nil {
		return autoscale.Machine{}, err
	}
	if id == "" {
		if id, err = p.create(ctx, spec); err != nil {
			return autoscale.Machine{}, err
		}
		if id == "" { // another Create made it meanwhile
			if id, err = p.findMachine(ctx, spec); err != nil {
				return autoscale.Machine{}, err
			}
			if id == "" {
				return autoscale.Machine{}, fmt.Errorf("creating machine %s: its container %s was made and removed meanwhile", spec.Name, name)
			}
		}
	}
	addr, err := p.address(ctx, id)
	if err != nil {
		return autoscale.Machine{ID: id}, fmt.Errorf("machine %s (%s): %w", spec.Name, shortID(id), err)
	}
	return autoscale.Machine{ID: id, Address: addr}, nil
}

func checkSpec(spec autoscale.MachineSpec) error {
	if !nameRE.MatchString(spec.Name) {
		return fmt.Errorf("the name is not a valid Docker name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
	}
	if spec.GPUs > 0 {
		return fmt.Errorf("%d GPUs asked: the %s provider has none", spec.GPUs, Type)
	}
	if spec.Cores < 0 || spec.MemoryMB < 0 {
		return fmt.Errorf("negative size: %v cores, %d MB", spec.Cores, spec.MemoryMB)
	}
	if _, err := pki.ParseCertificate(spec.TLS.CACert); err != nil {
		return fmt.Errorf("TLS CA certificate: %w", err)
	}
	if _, err := tls.X509KeyPair(spec.TLS.ServerCert, spec.TLS.ServerKey); err != nil {
		return fmt.Errorf("TLS server certificate and key: %w", err)
	}
	return nil
}

// findMachine returns the id of spec's machine, started and serving
// spec.TLS, or "" when it has none.
func (p *Provider) findMachine(ctx context.Context, spec autoscale.MachineSpec) (string, error) {
	name := ContainerName(spec.Name)
	res, err := p.c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("looking up machine %s: %w", spec.Name, err)
	}
	in := res.Container
	if in.Config == nil || in.Config.Labels[LabelMachine] != spec.Name {
		return "", fmt.Errorf("machine %s: a container named %s exists that is not a machine (no label %s=%s)", spec.Name, name, LabelMachine, spec.Name)
	}
	if in.State != nil && in.State.Status == container.StateRemoving {
		return "", fmt.Errorf("machine %s: its container %s is being removed", spec.Name, shortID(in.ID))
	}
	same, err := p.hasTLS(ctx, in.ID, spec.TLS)
	if err != nil {
		return "", fmt.Errorf("machine %s: %w", spec.Name, err)
	}
	running := in.State != nil && (in.State.Running || in.State.Restarting)
	if !same {
		if err := p.copyTLS(ctx, in.ID, spec.TLS); err != nil {
			return "", fmt.Errorf("machine %s: %w", spec.Name, err)
		}
		if running {
			// dockerd reads its certificates at start only.
			if _, err := p.c.ContainerRestart(ctx, in.ID, client.ContainerRestartOptions{}); err != nil {
				return "", fmt.Errorf("machine %s: restarting it with new TLS material: %w", spec.Name, err)
			}
			return in.ID, nil
		}
	}
	if !running {
		if _, err := p.c.ContainerStart(ctx, in.ID, client.ContainerStartOptions{}); err != nil {
			return "", fmt.Errorf("machine %s: starting its container %s: %w", spec.Name, shortID(in.ID), err)
		}
	}
	return in.ID, nil
}

// create makes and starts spec's machine and returns its id; "" when a
// container of its name appeared meanwhile. On a failure, what it made is
// removed.
func (p *Provider) create(ctx context.Context, spec autoscale.MachineSpec) (id string, err error) {
	name := ContainerName(spec.Name)
	// A volume without its container is what a Delete that stopped
	// halfway left: the data root of an earlier machine of the name.
	if _, err := p.c.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
		if _, err := p.c.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("machine %s: removing the volume %s left by an earlier machine: %w", spec.Name, name, err)
		}
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("machine %s: looking up its volume: %w", spec.Name, err)
	}
	if _, err := p.c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: map[string]string{LabelMachine: spec.Name}}); err != nil {
		return "", fmt.Errorf("machine %s: creating its volume %s: %w", spec.Name, name, err)
	}

	cores := spec.Cores
	if cores == 0 {
		cores = p.cfg.Cores
	}
	memoryMB := spec.MemoryMB
	if memoryMB == 0 {
		memoryMB = p.cfg.MemoryMB
	}
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	for _, l := range droppedLabels {
		delete(labels, l)
	}
	labels[LabelMachine] = spec.Name
	hostname := ""
	if hostnameRE.MatchString(spec.Name) {
		hostname = spec.Name
	}
	cfg := &container.Config{
		Image:    p.cfg.Image,
		Cmd:      DockerdArgs(),
		Labels:   labels,
		Hostname: hostname,
	}
	hcfg := &container.HostConfig{
		NetworkMode: container.NetworkMode(p.cfg.Network),
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: name, Target: DataRoot},
		},
		// The engine's run-time state starts empty at each start.
		Tmpfs: map[string]string{"/run": "rw,exec,nosuid,nodev,mode=0755"},
		Resources: container.Resources{
			NanoCPUs: int64(cores * 1e9),
			Memory:   int64(memoryMB) << 20,
		},
		// Every capability but one, instead of privileged: see the
		// package's documentation.
		CapAdd:        []string{"ALL"},
		CapDrop:       []string{"SYS_RESOURCE"},
		SecurityOpt:   []string{"seccomp=unconfined", "apparmor=unconfined", "label=disable"},
		MaskedPaths:   []string{},
		ReadonlyPaths: []string{},
		CgroupnsMode:  container.CgroupnsModePrivate,
		// A machine is started again with the host's engine, as a VM
		// with its host.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
	}
	ncfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{p.cfg.Network: {}}}
	res, err := p.c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hcfg, NetworkingConfig: ncfg, Name: name})
	if cerrdefs.IsConflict(err) {
		return "", nil
	}
	if err != nil {
		p.removeVolume(name)
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("machine %s: image %s not found on %s (scripts/build-agent-image.sh builds it): %w", spec.Name, p.cfg.Image, p.cfg.DockerEndpoint, err)
		}
		return "", fmt.Errorf("machine %s: creating its container: %w", spec.Name, err)
	}
	defer func() {
		if err != nil {
			p.remove(res.ID, name)
		}
	}()
	if err := p.copyTLS(ctx, res.ID, spec.TLS); err != nil {
		return "", fmt.Errorf("machine %s: %w", spec.Name, err)
	}
	if _, err := p.c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return "", fmt.Errorf("machine %s: starting its container %s: %w", spec.Name, shortID(res.ID), err)
	}
	return res.ID, nil
}

// DockerdArgs are the arguments of the machines' dockerd (after those the
// image's entrypoint adds: the storage driver and the MTU): TCP with TLS
// on autoscale.EnginePort, client certificates required, and the local
// socket.
func DockerdArgs() []string {
	return []string{
		fmt.Sprintf("--host=tcp://0.0.0.0:%d", autoscale.EnginePort),
		"--tlsverify",
		"--tlscacert=" + path.Join(TLSDir, "ca.pem"),
		"--tlscert=" + path.Join(TLSDir, "cert.pem"),
		"--tlskey=" + path.Join(TLSDir, "key.pem"),
		"--host=unix:///var/run/docker.sock",
	}
}

// tlsFiles are the engine's TLS files, by name in TLSDir.
func tlsFiles(t autoscale.EngineTLS) map[string][]byte {
	return map[string][]byte{"ca.pem": t.CACert, "cert.pem": t.ServerCert, "key.pem": t.ServerKey}
}

// copyTLS writes t into TLSDir of the container (created or running).
func (p *Provider) copyTLS(ctx context.Context, id string, t autoscale.EngineTLS) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dir := strings.TrimPrefix(TLSDir, "/etc/")
	for _, d := range []string{path.Dir(dir), dir} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: now}); err != nil {
			return err
		}
	}
	files := tlsFiles(t)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		mode := int64(0o644)
		if n == "key.pem" {
			mode = 0o600
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + n, Mode: mode, Size: int64(len(files[n])), ModTime: now}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := p.c.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/etc", Content: &buf}); err != nil {
		return fmt.Errorf("writing the engine's TLS material into container %s: %w", shortID(id), err)
	}
	return nil
}

// hasTLS reports whether the container's TLSDir holds t.
func (p *Provider) hasTLS(ctx context.Context, id string, t autoscale.EngineTLS) (bool, error) {
	res, err := p.c.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: TLSDir})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the engine's TLS material in container %s: %w", shortID(id), err)
	}
	defer res.Content.Close()
	want := tlsFiles(t)
	got := map[string][]byte{}
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, fmt.Errorf("reading the engine's TLS material in container %s: %w", shortID(id), err)
		}
		n := path.Base(h.Name)
		if _, ok := want[n]; !ok || h.Typeflag != tar.TypeReg || h.Size > 1<<20 {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return false, fmt.Errorf("reading the engine's TLS material in container %s: %w", shortID(id), err)
		}
		got[n] = b
	}
	for n, b := range want {
		if !bytes.Equal(got[n], b) {
			return false, nil
		}
	}
	return true, nil
}

// address waits for the container's address on the network.
func (p *Provider) address(ctx context.Context, id string) (netip.Addr, error) {
	for {
		res, err := p.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return netip.Addr{}, fmt.Errorf("%w: %w", autoscale.ErrNoAddress, ctx.Err())
			}
			return netip.Addr{}, fmt.Errorf("looking up its address: %w", err)
		}
		in := res.Container
		if in.NetworkSettings != nil {
			if ep := in.NetworkSettings.Networks[p.cfg.Network]; ep != nil && ep.IPAddress.IsValid() {
				return ep.IPAddress.Unmap(), nil
			}
		}
		if in.State != nil && !in.State.Running && !in.State.Restarting {
			return netip.Addr{}, fmt.Errorf("%w: its container is %s (exit code %d%s)", autoscale.ErrNoAddress, in.State.Status, in.State.ExitCode, errText(in.State.Error))
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("%w: %w", autoscale.ErrNoAddress, ctx.Err())
		case <-time.After(addressPoll):
		}
	}
}

func errText(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// Delete removes the machine's container (killing its engine and every
// container in it) and its volume; nil when the container is gone. A
// container that is not a machine (no greenroom.machine label) is refused.
func (p *Provider) Delete(ctx context.Context, id string) error {
	res, err := p.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting machine %s: %w", shortID(id), err)
	}
	in := res.Container
	if in.Config == nil || in.Config.Labels[LabelMachine] == "" {
		return fmt.Errorf("deleting machine %s: container %s is not a machine (no label %s)", shortID(id), strings.TrimPrefix(in.Name, "/"), LabelMachine)
	}
	var volumes []string
	for _, m := range in.Mounts {
		if m.Type == mount.TypeVolume && m.Name != "" {
			volumes = append(volumes, m.Name)
		}
	}
	if _, err := p.c.ContainerRemove(ctx, in.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("deleting machine %s: removing its container: %w", in.Config.Labels[LabelMachine], err)
	}
	for _, v := range volumes {
		if _, err := p.c.VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("deleting machine %s: removing its volume %s: %w", in.Config.Labels[LabelMachine], v, err)
		}
	}
	return nil
}

// remove removes a container and volume that create made, whatever the
// caller's context: a failed Create leaves nothing behind.
func (p *Provider) remove(id, volume string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = p.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	_, _ = p.c.VolumeRemove(ctx, volume, client.VolumeRemoveOptions{Force: true})
}

func (p *Provider) removeVolume(volume string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = p.c.VolumeRemove(ctx, volume, client.VolumeRemoveOptions{Force: true})
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Find returns the machine made for name, if there is one (a deletion
// whose machine id was never recorded: the replica that made it died
// first).
func (p *Provider) Find(ctx context.Context, name string) (autoscale.Machine, bool, error) {
	res, err := p.c.ContainerInspect(ctx, ContainerName(name), client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return autoscale.Machine{}, false, nil
	}
	if err != nil {
		return autoscale.Machine{}, false, fmt.Errorf("looking up machine %s: %w", name, err)
	}
	if res.Container.Config == nil || res.Container.Config.Labels[LabelMachine] != name {
		return autoscale.Machine{}, false, nil
	}
	return autoscale.Machine{ID: res.Container.ID}, true, nil
}
