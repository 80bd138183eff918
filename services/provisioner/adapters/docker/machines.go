package docker

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
)

// MachineDialer returns how the autoscaler reaches a new agent's engine:
// with the TLS settings of its VM provider, and with the images it needs
// copied from the engine at source (this deployment's image store: no
// registry is assumed).
func (e *Engines) MachineDialer(source string) autoscale.Dial {
	return func(endpoint string, tlsConfig *tls.Config) (autoscale.Engine, error) {
		c, err := client.New(withTLS(tlsConfig), client.WithHost(endpoint))
		if err != nil {
			return nil, fmt.Errorf("docker client for %s: %w", endpoint, err)
		}
		return &machineEngine{c: c, engines: e, source: source}, nil
	}
}

// machineEngine is a new agent's engine (autoscale.Engine).
type machineEngine struct {
	c       *client.Client
	engines *Engines
	source  string
}

// Ping asks the engine whether it answers, negotiating its API version.
func (m *machineEngine) Ping(ctx context.Context) error {
	_, err := m.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return err
}

// LoadImages copies the images of refs the engine lacks from the source
// engine, and returns those it copied.
func (m *machineEngine) LoadImages(ctx context.Context, refs []string) ([]string, error) {
	src, err := m.engines.For(m.source)
	if err != nil {
		return nil, fmt.Errorf("the image source %s: %w", m.source, err)
	}
	return CopyImages(ctx, src.c, m.c, refs)
}

// Close releases the client.
func (m *machineEngine) Close() error { return m.c.Close() }
