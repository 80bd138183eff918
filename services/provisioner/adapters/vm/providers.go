// Package vm makes the autoscaler's providers from their configurations
// as the database holds them: the VM provider types (local: containers
// running dockerd on this host; digitalocean: droplets) and the DNS
// provider type (rfc2136). The settings and secrets of each type are its
// package's Config, decoded from the provider's JSON; the config service
// checks the same keys when they are written.
package vm

import (
	"encoding/json"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/dns/rfc2136"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm/digitalocean"
	"github.com/greenroom-dev/greenroom/services/provisioner/adapters/vm/local"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/autoscale"
	"github.com/greenroom-dev/greenroom/services/provisioner/domain"
)

// Providers implements autoscale.Providers.
type Providers struct{}

var (
	_ autoscale.Providers = Providers{}
	_ autoscale.Finder    = (*local.Provider)(nil)
	_ autoscale.Finder    = (*digitalocean.Provider)(nil)
)

// VM returns the VM provider p configures.
func (Providers) VM(p autoscale.ProviderConfig) (autoscale.Provider, error) {
	switch p.Type {
	case local.Type:
		c, err := local.ParseConfig(p.Settings)
		if err != nil {
			return nil, fmt.Errorf("VM provider %s: %w", p.Name, err)
		}
		return local.New(c)
	case digitalocean.Type:
		var c digitalocean.Config
		if err := decode(p, &c); err != nil {
			return nil, err
		}
		return digitalocean.New(c)
	}
	return nil, fmt.Errorf("VM provider %s: unknown type %q", p.Name, p.Type)
}

// DNS returns the DNS provider p configures.
func (Providers) DNS(p autoscale.ProviderConfig) (autoscale.DNS, error) {
	if p.Type != "rfc2136" {
		return nil, fmt.Errorf("DNS provider %s: unknown type %q", p.Name, p.Type)
	}
	var c rfc2136.Config
	if err := decode(p, &c); err != nil {
		return nil, err
	}
	return rfc2136.New(c)
}

// Size is the size of a new machine of the VM provider p.
func (Providers) Size(p autoscale.ProviderConfig) (domain.Resources, int, error) {
	switch p.Type {
	case local.Type:
		c, err := local.ParseConfig(p.Settings)
		if err != nil {
			return domain.Resources{}, 0, err
		}
		c = c.WithDefaults()
		return domain.Resources{MilliCores: domain.MilliCores(c.Cores), MemoryMB: int64(c.MemoryMB)}, 0, nil
	case digitalocean.Type:
		var c digitalocean.Config
		if err := json.Unmarshal(p.Settings, &c); err != nil {
			return domain.Resources{}, 0, fmt.Errorf("%s settings: %w", p.Type, err)
		}
		return domain.Resources{MilliCores: domain.MilliCores(c.Cores), MemoryMB: int64(c.MemoryMB)}, c.GPUs, nil
	}
	return domain.Resources{}, 0, fmt.Errorf("unknown VM provider type %q", p.Type)
}

// decode reads p's settings, then its secrets, into c.
func decode(p autoscale.ProviderConfig, c any) error {
	for _, part := range []struct {
		what string
		raw  json.RawMessage
	}{{"settings", p.Settings}, {"secrets", p.Secrets}} {
		if len(part.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(part.raw, c); err != nil {
			return fmt.Errorf("%s provider %s's %s: %w", p.Type, p.Name, part.what, err)
		}
	}
	return nil
}
