// Package docker is every Docker Engine call Greenroom makes: create and
// start a session's container, inspect it, run an exec in it, stop and
// remove it, and list containers by label. One client per agent endpoint
// (unix:// or tcp://) is kept, with API version negotiation so engines as
// old as API 1.41 work.
package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Defaults.
const (
	// StopTimeoutDefault is how long a container gets to exit on SIGTERM
	// before it is killed.
	StopTimeoutDefault = 3 * time.Second
	// ExecOutputLimit bounds the exec output kept for failure details.
	ExecOutputLimit = 16 << 10
)

// Engines hands out one Engine per Docker endpoint, created on first use
// and kept: clients hold connection pools worth reusing.
type Engines struct {
	mu      sync.Mutex
	engines map[string]*Engine
}

// pingTimeout bounds the first contact with an engine.
const pingTimeout = 10 * time.Second

// NewEngines returns an empty set of engines.
func NewEngines() *Engines { return &Engines{engines: map[string]*Engine{}} }

// For returns the engine of endpoint, e.g. unix:///var/run/docker.sock or
// tcp://10.0.0.5:2375.
func (e *Engines) For(endpoint string) (*Engine, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if eng, ok := e.engines[endpoint]; ok {
		return eng, nil
	}
	c, err := client.NewClientWithOpts(client.WithHost(endpoint), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", endpoint, err)
	}
	// Negotiate the API version now, once: the client otherwise negotiates
	// lazily on first use, and concurrent first uses race on its version.
	// An engine that does not answer is not cached, so it is retried.
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	ping, err := c.Ping(ctx)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("docker engine %s does not answer: %w", endpoint, err)
	}
	c.NegotiateAPIVersionPing(ping)
	eng := &Engine{c: c, endpoint: endpoint}
	e.engines[endpoint] = eng
	return eng, nil
}

// Close closes every client.
func (e *Engines) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, eng := range e.engines {
		_ = eng.c.Close()
		delete(e.engines, k)
	}
}

// Engine is one Docker endpoint.
type Engine struct {
	c        *client.Client
	endpoint string
}

// Endpoint is the engine's address.
func (e *Engine) Endpoint() string { return e.endpoint }

// Create creates (but does not start) the container of spec.
func (e *Engine) Create(ctx context.Context, spec domain.ContainerSpec) (string, error) {
	port, err := nat.NewPort("tcp", strconv.Itoa(spec.Port))
	if err != nil {
		return "", fmt.Errorf("port %d: %w", spec.Port, err)
	}
	cfg := &container.Config{
		Image:        spec.Image,
		Env:          spec.Env,
		Labels:       spec.Labels,
		ExposedPorts: nat.PortSet{port: {}},
		Hostname:     spec.Hostname,
		User:         spec.User,
		WorkingDir:   spec.WorkingDir,
	}
	hcfg := &container.HostConfig{
		PortBindings: nat.PortMap{port: {{HostIP: spec.HostIP, HostPort: ""}}},
		Resources: container.Resources{
			NanoCPUs: spec.NanoCPUs,
			Memory:   spec.MemoryBytes,
		},
		Binds:      spec.Binds,
		ShmSize:    spec.ShmSize,
		CapAdd:     spec.CapAdd,
		CapDrop:    spec.CapDrop,
		DNS:        spec.DNS,
		ExtraHosts: spec.ExtraHosts,
	}
	for _, d := range spec.Devices {
		hcfg.Devices = append(hcfg.Devices, container.DeviceMapping{
			PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions,
		})
	}
	resp, err := e.c.ContainerCreate(ctx, cfg, hcfg, nil, nil, spec.Name)
	if cerrdefs.IsConflict(err) {
		return "", fmt.Errorf("%w: %s: %v", domain.ErrContainerNameInUse, spec.Name, err)
	}
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("%w: %s: %v", domain.ErrImageNotFound, spec.Image, err)
	}
	if err != nil {
		return "", fmt.Errorf("creating container %s from %s: %w", spec.Name, spec.Image, err)
	}
	return resp.ID, nil
}

// Upload writes u into a created (or running) container, owners and modes
// as given: through the engine's archive API, so it works on a remote
// engine too, and a directory mounted from the agent gets its owner on the
// agent. Missing parents of u.Dir are made, owned by root with mode 0755;
// existing ones are left as they are.
func (e *Engine) Upload(ctx context.Context, id string, u domain.Upload) error {
	// The archive is extracted at the deepest existing parent.
	at, missing := path.Clean(u.Dir), []string{}
	for at != "/" {
		_, err := e.c.ContainerStatPath(ctx, id, at)
		if err == nil {
			break
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("looking up %s in container %s: %w", at, domain.ShortID(id), err)
		}
		missing = append([]string{path.Base(at)}, missing...)
		at = path.Dir(at)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	prefix := ""
	for _, m := range missing {
		prefix = path.Join(prefix, m)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: prefix + "/", Mode: 0o755}); err != nil {
			return err
		}
	}
	for _, ent := range u.Entries {
		name := path.Join(prefix, ent.Name)
		h := &tar.Header{Name: name, Mode: ent.Mode, Uid: ent.UID, Gid: ent.GID, ModTime: time.Now()}
		if ent.Dir {
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(ent.Content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !ent.Dir {
			if _, err := tw.Write(ent.Content); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	// Without CopyUIDGID the engine keeps each entry's uid and gid; with it,
	// it would give everything to the container's configured user.
	err := e.c.CopyToContainer(ctx, id, at, &buf, container.CopyToContainerOptions{})
	if err != nil {
		return fmt.Errorf("writing %s into container %s: %w", u.Dir, domain.ShortID(id), err)
	}
	return nil
}

// Start starts a created container.
func (e *Engine) Start(ctx context.Context, id string) error {
	if err := e.c.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting container %s: %w", domain.ShortID(id), err)
	}
	return nil
}

// Inspect reads a container's state, labels and published ports.
func (e *Engine) Inspect(ctx context.Context, id string) (domain.Container, error) {
	in, err := e.c.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return domain.Container{}, fmt.Errorf("%w: %s", domain.ErrContainerNotFound, domain.ShortID(id))
	}
	if err != nil {
		return domain.Container{}, fmt.Errorf("inspecting container %s: %w", domain.ShortID(id), err)
	}
	c := domain.Container{ID: in.ID, Name: strings.TrimPrefix(in.Name, "/"), HostPorts: map[int]int{}}
	if created, err := time.Parse(time.RFC3339Nano, in.Created); err == nil {
		c.Created = created
	}
	if in.Config != nil {
		c.Labels = in.Config.Labels
	}
	if in.State != nil {
		c.Running = in.State.Running
		c.State = string(in.State.Status)
		c.ExitCode = in.State.ExitCode
	}
	if in.NetworkSettings != nil {
		for p, bindings := range in.NetworkSettings.Ports {
			for _, b := range bindings {
				if hp, err := strconv.Atoi(b.HostPort); err == nil && hp > 0 {
					c.HostPorts[p.Int()] = hp
					break
				}
			}
		}
	}
	return c, nil
}

// ListByLabels lists containers, running or not, carrying every label
// given (key=value, or key alone for "any value"). The exit code of an
// exited container is read from its status line, so that checking many
// containers takes this one call rather than an inspect each.
func (e *Engine) ListByLabels(ctx context.Context, labels map[string]string) ([]domain.Container, error) {
	args := filters.NewArgs()
	for k, v := range labels {
		if v == "" {
			args.Add("label", k)
		} else {
			args.Add("label", k+"="+v)
		}
	}
	list, err := e.c.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("listing containers on %s: %w", e.endpoint, err)
	}
	out := make([]domain.Container, 0, len(list))
	for _, s := range list {
		c := domain.Container{ID: s.ID, Labels: s.Labels, Running: s.State == "running", State: string(s.State),
			ExitCode: exitCodeOf(s.Status), HostPorts: map[int]int{}, Created: time.Unix(s.Created+1, 0)}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		for _, p := range s.Ports {
			if p.PublicPort != 0 {
				c.HostPorts[int(p.PrivatePort)] = int(p.PublicPort)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// SessionContainers lists the containers labelled as session sessionID's.
func (e *Engine) SessionContainers(ctx context.Context, sessionID string) ([]domain.Container, error) {
	return e.ListByLabels(ctx, map[string]string{domain.LabelSession: sessionID})
}

// Remove stops a container (SIGTERM, then SIGKILL after
// StopTimeoutDefault) and removes it with its anonymous volumes. A
// container that does not exist counts as removed.
func (e *Engine) Remove(ctx context.Context, id string) error {
	timeout := int(StopTimeoutDefault / time.Second)
	// A failed stop is no reason to keep the container: the forced remove
	// below kills it.
	_ = e.c.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout})
	err := e.c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) && !isRemovalInProgress(err) {
		return fmt.Errorf("removing container %s: %w", domain.ShortID(id), err)
	}
	return nil
}

// RemoveSession removes the container with id containerID (when set) and
// any other container labelled as session sessionID's, returning how many
// it removed.
func (e *Engine) RemoveSession(ctx context.Context, sessionID, containerID string) (int, error) {
	ids := map[string]bool{}
	if containerID != "" {
		ids[containerID] = true
	}
	list, err := e.SessionContainers(ctx, sessionID)
	if err != nil {
		return 0, err
	}
	for _, c := range list {
		ids[c.ID] = true
	}
	var errs []error
	for id := range ids {
		if err := e.Remove(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return len(ids) - len(errs), errors.Join(errs...)
}

// Exec runs spec inside container id and waits for it to finish.
func (e *Engine) Exec(ctx context.Context, id string, spec domain.ExecSpec) (domain.ExecResult, error) {
	created, err := e.c.ContainerExecCreate(ctx, id, container.ExecOptions{
		User: spec.User, Privileged: spec.Privileged, Env: spec.Env, WorkingDir: spec.Workdir,
		Cmd: spec.Cmd, AttachStdout: true, AttachStderr: true,
	})
	switch {
	case cerrdefs.IsNotFound(err):
		return domain.ExecResult{}, fmt.Errorf("%w: %s: %v", domain.ErrContainerNotFound, domain.ShortID(id), err)
	case isNotRunning(err):
		return domain.ExecResult{}, fmt.Errorf("%w: %s: %v", domain.ErrContainerNotRunning, domain.ShortID(id), err)
	}
	if err != nil {
		return domain.ExecResult{}, fmt.Errorf("creating exec %q in %s: %w", spec.Cmd, domain.ShortID(id), err)
	}
	att, err := e.c.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return domain.ExecResult{}, fmt.Errorf("starting exec %q in %s: %w", spec.Cmd, domain.ShortID(id), err)
	}
	defer att.Close()
	out := &tailBuffer{limit: ExecOutputLimit}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(out, out, att.Reader)
		copied <- err
	}()
	select {
	case err = <-copied:
	case <-ctx.Done():
		att.Close()
		return domain.ExecResult{}, fmt.Errorf("exec %q in %s: %w", spec.Cmd, domain.ShortID(id), ctx.Err())
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return domain.ExecResult{}, fmt.Errorf("reading exec output in %s: %w", domain.ShortID(id), err)
	}
	// The output stream ends when the process exits, but the engine may
	// record the exit code a moment later.
	for {
		in, err := e.c.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return domain.ExecResult{}, fmt.Errorf("inspecting exec in %s: %w", domain.ShortID(id), err)
		}
		if !in.Running {
			return domain.ExecResult{ExitCode: in.ExitCode, Output: out.String()}, nil
		}
		select {
		case <-ctx.Done():
			return domain.ExecResult{}, fmt.Errorf("exec %q in %s: %w", spec.Cmd, domain.ShortID(id), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.limit; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// isRemovalInProgress: a concurrent remove of the same container (a
// destroy racing a failed provisioning) is as good as our own.
func isRemovalInProgress(err error) bool {
	return cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")
}

// isNotRunning: the engine refuses an exec in a stopped container with a
// conflict naming it "is not running" (paused and restarting containers
// are refused with other words: they are not gone).
func isNotRunning(err error) bool {
	return cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "is not running")
}

// exitedStatus matches the status line of an exited container in a list,
// e.g. "Exited (137) 5 seconds ago".
var exitedStatus = regexp.MustCompile(`^Exited \((-?\d+)\)`)

// exitCodeOf reads the exit code from a container's status line; 0 when it
// has none.
func exitCodeOf(status string) int {
	m := exitedStatus.FindStringSubmatch(status)
	if m == nil {
		return 0
	}
	code, _ := strconv.Atoi(m[1])
	return code
}
