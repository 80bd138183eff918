// Package docker is every Docker Engine call Greenroom makes: create and
// start a session's container, inspect it, run an exec in it, stop and
// remove it, and list containers by label. One client per agent endpoint
// (unix:// or tcp://) is kept, with API version negotiation so engines as
// old as API 1.41 work; an engine that does not answer delays only the
// calls for it (see Engines).
package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/libs/settings"
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
//
// Each endpoint is contacted on its own: a lock is never held across a
// network call, so an engine that does not answer delays only the calls
// for it. While an endpoint is being contacted, other calls for it wait for
// that contact and share its outcome rather than contacting it again. An
// endpoint whose contact failed is remembered as failed for a backoff
// (EnginesConfig): calls for it in that time get the same error at once,
// without dialling it; the first call after the backoff contacts it again.
type Engines struct {
	cfg EnginesConfig
	// ctx is cancelled by Close, ending the contacts under way.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex // guards what follows; never held across a network call
	endpoints map[string]*endpointState
	closed    bool

	// testHookWait, when set, is called as a call starts waiting for
	// another call's contact with endpoint.
	testHookWait func(endpoint string)
}

// EnginesConfig tunes how engines are contacted; zero values take the
// defaults.
type EnginesConfig struct {
	// PingTimeout bounds the first contact with an engine (PingTimeoutDefault).
	PingTimeout time.Duration
	// FailureBackoffMin is how long an engine whose contact failed is
	// remembered as failed (FailureBackoffMinDefault); it doubles with each
	// failed contact in a row, up to FailureBackoffMax
	// (FailureBackoffMaxDefault).
	FailureBackoffMin, FailureBackoffMax time.Duration
	// TLS, when enabled, is used for every tcp:// endpoint
	// (GREENROOM_DOCKER_TLS_*): HTTPS with the client certificate,
	// the engine's certificate verified against its CA.
	TLS settings.DockerTLS
	// TLSFor, when set, gives the TLS configuration of a tcp:// endpoint
	// that has one of its own: an autoscaled agent's engine, whose
	// certificates its VM provider made. nil (and no error) for an
	// endpoint that has none, which TLS above then covers.
	TLSFor func(ctx context.Context, endpoint string) (*tls.Config, error)
}

// Defaults of EnginesConfig.
const (
	PingTimeoutDefault       = 10 * time.Second
	FailureBackoffMinDefault = 2 * time.Second
	FailureBackoffMaxDefault = 30 * time.Second
)

func (c *EnginesConfig) withDefaults() {
	if c.PingTimeout <= 0 {
		c.PingTimeout = PingTimeoutDefault
	}
	if c.FailureBackoffMin <= 0 {
		c.FailureBackoffMin = FailureBackoffMinDefault
	}
	if c.FailureBackoffMax <= 0 {
		c.FailureBackoffMax = FailureBackoffMaxDefault
	}
	c.FailureBackoffMax = max(c.FailureBackoffMax, c.FailureBackoffMin)
}

// backoff is how long an endpoint is remembered as failed after its
// failures-th failed contact in a row (1 for the first).
func (c EnginesConfig) backoff(failures int) time.Duration {
	d := c.FailureBackoffMin
	for i := 1; i < failures && d < c.FailureBackoffMax; i++ {
		d *= 2
	}
	return min(d, c.FailureBackoffMax)
}

// endpointState is what Engines knows of one endpoint.
type endpointState struct {
	eng      *Engine  // set once a contact succeeded
	contact  *contact // the contact under way, if any
	err      error    // why the last contact failed
	retryAt  time.Time
	failures int // failed contacts in a row
}

// contact is one attempt to reach an endpoint; done is closed when eng or
// err is set.
type contact struct {
	done chan struct{}
	eng  *Engine
	err  error
}

// ErrEnginesClosed is returned by For once Close was called.
var ErrEnginesClosed = errors.New("docker engines closed")

// NewEngines returns an empty set of engines with the default settings.
func NewEngines() *Engines { return NewEnginesWith(EnginesConfig{}) }

// NewEnginesWith returns an empty set of engines tuned by cfg.
func NewEnginesWith(cfg EnginesConfig) *Engines {
	cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Engines{cfg: cfg, ctx: ctx, cancel: cancel, endpoints: map[string]*endpointState{}}
}

// For returns the engine of endpoint, e.g. unix:///var/run/docker.sock or
// tcp://10.0.0.5:2375. Its first call for an endpoint contacts the engine
// (bounded by PingTimeout); an endpoint whose contact failed less than its
// backoff ago gets that failure again at once.
func (e *Engines) For(endpoint string) (*Engine, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrEnginesClosed
	}
	st := e.endpoints[endpoint]
	if st == nil {
		st = &endpointState{}
		e.endpoints[endpoint] = st
	}
	if st.eng != nil {
		e.mu.Unlock()
		return st.eng, nil
	}
	if c := st.contact; c != nil {
		hook := e.testHookWait
		e.mu.Unlock()
		if hook != nil {
			hook(endpoint)
		}
		<-c.done
		return c.eng, c.err
	}
	if st.err != nil && time.Now().Before(st.retryAt) {
		err := fmt.Errorf("%w (not contacted again before %s)", st.err, st.retryAt.Format(time.TimeOnly))
		e.mu.Unlock()
		return nil, err
	}
	c := &contact{done: make(chan struct{})}
	st.contact = c
	e.mu.Unlock()

	eng, err := e.contact(endpoint)

	e.mu.Lock()
	if e.closed {
		if eng != nil {
			_ = eng.c.Close()
		}
		eng, err = nil, ErrEnginesClosed
	}
	st.contact = nil
	if err != nil {
		st.failures++
		st.err, st.retryAt = err, time.Now().Add(e.cfg.backoff(st.failures))
	} else {
		st.eng, st.err, st.failures = eng, nil, 0
	}
	c.eng, c.err = eng, err
	close(c.done)
	e.mu.Unlock()
	return eng, err
}

// contact makes a client for endpoint and negotiates its API version.
func (e *Engines) contact(endpoint string) (*Engine, error) {
	// The client negotiates the API version unless given one (it never
	// is here): down to the engine's, not below client.MinAPIVersion.
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.PingTimeout)
	defer cancel()
	var own *tls.Config
	if e.cfg.TLSFor != nil && strings.HasPrefix(endpoint, "tcp://") {
		var err error
		if own, err = e.cfg.TLSFor(ctx, endpoint); err != nil {
			return nil, fmt.Errorf("TLS settings of docker engine %s: %w", endpoint, err)
		}
	}
	var opts []client.Opt
	switch {
	case own != nil:
		opts = append(opts, withTLS(own))
	case e.cfg.TLS.Enabled() && strings.HasPrefix(endpoint, "tcp://"):
		opts = append(opts, client.WithTLSClientConfig(e.cfg.TLS.CA, e.cfg.TLS.Cert, e.cfg.TLS.Key))
	}
	c, err := client.New(append(opts, client.WithHost(endpoint))...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", endpoint, err)
	}
	// Negotiate the API version now, once, within PingTimeout: otherwise the
	// client would on its first call, bounded only by that call's context.
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = c.Close()
		if cerrdefs.IsInvalidArgument(err) {
			// It answered, with an API version older than the client's oldest.
			return nil, fmt.Errorf("docker engine %s: %w", endpoint, err)
		}
		return nil, fmt.Errorf("docker engine %s does not answer: %w", endpoint, err)
	}
	return &Engine{c: c, endpoint: endpoint}, nil
}

// withTLS has a client reach its engine over HTTPS with cfg (an
// autoscaled agent's: its VM provider's CA and client certificate).
func withTLS(cfg *tls.Config) client.Opt {
	return client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}})
}

// Forget drops what Engines knows of endpoint (its client, its failures):
// the agent that used it is gone, and a machine that gets its address
// next may be another provider's, with other TLS settings.
func (e *Engines) Forget(endpoint string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.endpoints[endpoint]
	if st == nil || st.contact != nil {
		return
	}
	if st.eng != nil {
		_ = st.eng.c.Close()
	}
	delete(e.endpoints, endpoint)
}

// Close closes every client and ends the contacts under way; For fails
// from then on.
func (e *Engines) Close() {
	e.cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for k, st := range e.endpoints {
		if st.eng != nil {
			_ = st.eng.c.Close()
		}
		if st.contact == nil {
			delete(e.endpoints, k)
		}
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
	port, err := network.ParsePort(strconv.Itoa(spec.Port) + "/tcp")
	if err != nil {
		return "", fmt.Errorf("port %d: %w", spec.Port, err)
	}
	// The API takes addresses as netip.Addr; the zero one (HostIP "") is
	// sent as "", every interface.
	var hostIP netip.Addr
	if spec.HostIP != "" {
		if hostIP, err = netip.ParseAddr(spec.HostIP); err != nil {
			return "", fmt.Errorf("publish address of port %d: %w", spec.Port, err)
		}
	}
	var dns []netip.Addr
	for _, s := range spec.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return "", fmt.Errorf("dns server: %w", err)
		}
		dns = append(dns, a)
	}
	cfg := &container.Config{
		Image:        spec.Image,
		Env:          spec.Env,
		Labels:       spec.Labels,
		ExposedPorts: network.PortSet{port: {}},
		Hostname:     spec.Hostname,
		User:         spec.User,
		WorkingDir:   spec.WorkingDir,
	}
	hcfg := &container.HostConfig{
		PortBindings: network.PortMap{port: {{HostIP: hostIP, HostPort: ""}}},
		Resources: container.Resources{
			NanoCPUs: spec.NanoCPUs,
			Memory:   spec.MemoryBytes,
		},
		Binds:       spec.Binds,
		ShmSize:     spec.ShmSize,
		CapAdd:      spec.CapAdd,
		CapDrop:     spec.CapDrop,
		SecurityOpt: spec.SecurityOpt,
		DNS:         dns,
		ExtraHosts:  spec.ExtraHosts,
	}
	if spec.PidsLimit != 0 {
		limit := spec.PidsLimit
		hcfg.PidsLimit = &limit
	}
	for _, d := range spec.Devices {
		hcfg.Devices = append(hcfg.Devices, container.DeviceMapping{
			PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions,
		})
	}
	resp, err := e.c.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hcfg, Name: spec.Name})
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
		_, err := e.c.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: at})
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
	_, err := e.c.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: at, Content: &buf})
	if err != nil {
		return fmt.Errorf("writing %s into container %s: %w", u.Dir, domain.ShortID(id), err)
	}
	return nil
}

// Start starts a created container.
func (e *Engine) Start(ctx context.Context, id string) error {
	if _, err := e.c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting container %s: %w", domain.ShortID(id), err)
	}
	return nil
}

// Inspect reads a container's state, labels and published ports.
func (e *Engine) Inspect(ctx context.Context, id string) (domain.Container, error) {
	res, err := e.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return domain.Container{}, fmt.Errorf("%w: %s", domain.ErrContainerNotFound, domain.ShortID(id))
	}
	if err != nil {
		return domain.Container{}, fmt.Errorf("inspecting container %s: %w", domain.ShortID(id), err)
	}
	in := res.Container
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
					c.HostPorts[int(p.Num())] = hp
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
	list, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return nil, fmt.Errorf("listing containers on %s: %w", e.endpoint, err)
	}
	out := make([]domain.Container, 0, len(list.Items))
	for _, s := range list.Items {
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
	_, _ = e.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout})
	_, err := e.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
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
	created, err := e.c.ExecCreate(ctx, id, client.ExecCreateOptions{
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
	att, err := e.c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
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
		in, err := e.c.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
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

// labelFilters filters by every label given (key=value, or key alone for
// "any value").
func labelFilters(labels map[string]string) client.Filters {
	f := client.Filters{}
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	return f
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
