// Package probe waits until a session's container answers on its published
// port: an HTTP GET of the workspace's readiness_path, or a TCP probe when
// it has none. Docker healthchecks are not used: they exec into every
// container forever and slow every other exec down (DESIGN.md "Runtime").
package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Defaults.
const (
	IntervalDefault       = 50 * time.Millisecond
	AttemptTimeoutDefault = time.Second
	// TCPSettleDefault is how long a TCP probe waits, once connected, for
	// the peer to hang up. A published port's docker-proxy accepts every
	// connection and then closes it at once when nothing listens in the
	// container; a listening server instead waits for the client to speak.
	TCPSettleDefault = 150 * time.Millisecond
	// AliveCheckEveryDefault is how often the container itself is checked
	// while probing, so a container that exited fails at once instead of
	// at the timeout.
	AliveCheckEveryDefault = time.Second
)

// Config tunes a Prober; zero values take the defaults.
type Config struct {
	Interval        time.Duration
	AttemptTimeout  time.Duration
	TCPSettle       time.Duration
	AliveCheckEvery time.Duration
}

// Prober probes readiness.
type Prober struct {
	cfg    Config
	client *http.Client
}

var _ command.ReadinessProbe = (*Prober)(nil)

// New returns a Prober.
func New(cfg Config) *Prober {
	cfg.Interval = cmp.Or(cfg.Interval, IntervalDefault)
	cfg.AttemptTimeout = cmp.Or(cfg.AttemptTimeout, AttemptTimeoutDefault)
	cfg.TCPSettle = cmp.Or(cfg.TCPSettle, TCPSettleDefault)
	cfg.AliveCheckEvery = cmp.Or(cfg.AliveCheckEvery, AliveCheckEveryDefault)
	return &Prober{cfg: cfg, client: &http.Client{
		Timeout: cfg.AttemptTimeout,
		// Each attempt is a fresh connection (an idle one kept from before
		// the container listened proves nothing), never through an
		// environment proxy, and a redirect already counts as an answer.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// ErrNotReady wraps the last probe failure when ctx ends first.
var ErrNotReady = errors.New("not ready")

// WaitReady probes t every Interval until it answers, ctx ends (its
// deadline is the readiness timeout), or alive — called every
// AliveCheckEvery — reports the container cannot become ready.
func (p *Prober) WaitReady(ctx context.Context, t domain.ProbeTarget, alive func(context.Context) error) error {
	var last error
	lastAlive := time.Now()
	for {
		if last = p.Once(ctx, t); last == nil {
			return nil
		}
		if alive != nil && time.Since(lastAlive) >= p.cfg.AliveCheckEvery {
			lastAlive = time.Now()
			if err := alive(ctx); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %v", ErrNotReady, t, last)
		case <-time.After(p.cfg.Interval):
		}
	}
}

// Once probes t one time.
func (p *Prober) Once(ctx context.Context, t domain.ProbeTarget) error {
	if t.Path == "" {
		return p.tcp(ctx, t)
	}
	return p.http(ctx, t)
}

func (p *Prober) http(ctx context.Context, t domain.ProbeTarget) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.String(), nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", t.Path, resp.Status)
	}
	return nil
}

func (p *Prober) tcp(ctx context.Context, t domain.ProbeTarget) error {
	d := net.Dialer{Timeout: p.cfg.AttemptTimeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(t.Host, strconv.Itoa(t.Port)))
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(p.cfg.TCPSettle))
	var b [1]byte
	n, err := conn.Read(b[:])
	var ne net.Error
	switch {
	case n > 0:
		return nil // the server spoke first (a banner): it listens
	case errors.As(err, &ne) && ne.Timeout():
		return nil // still connected and waiting for us: it listens
	case err == nil:
		return errors.New("connection closed")
	default:
		return fmt.Errorf("connection closed at once (nothing listens behind the published port): %w", err)
	}
}

// Reach opens a TCP connection to address (host:port) and closes it: the
// reachability check of a fixed server. It gives up after the attempt
// timeout.
func (p *Prober) Reach(ctx context.Context, address string) error {
	d := net.Dialer{Timeout: p.cfg.AttemptTimeout}
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return err
	}
	return conn.Close()
}
