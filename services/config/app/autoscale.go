package app

import (
	"context"
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/pki"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// providerKind is what the use cases of one kind of provider differ in.
type providerKind struct {
	kind, noun     string
	validateCreate func(domain.ProviderCreate) domain.FieldErrors
	validateUpdate func(domain.ProviderUpdate) domain.FieldErrors
	check          func(domain.Provider) domain.FieldErrors
	moved          func(p, old domain.Provider) string
	liveAgents     func(Tables) func(context.Context, string) (int, error)
	get            func(Tables) func(context.Context, string, Lock) (domain.Provider, error)
	insert         func(Tables) func(context.Context, domain.Provider) (domain.Provider, error)
	update         func(Tables) func(context.Context, domain.Provider) (domain.Provider, error)
	remove         func(Tables) func(context.Context, string) error
}

var (
	vmProviderKind = providerKind{kind: KindVMProvider, noun: "VM provider",
		validateCreate: domain.ProviderCreate.ValidateVM, validateUpdate: domain.ProviderUpdate.ValidateVM,
		check: domain.Provider.CheckVM, moved: domain.Provider.MovedVM,
		liveAgents: func(t Tables) func(context.Context, string) (int, error) { return t.CountVMProviderAgents },
		get:        func(t Tables) func(context.Context, string, Lock) (domain.Provider, error) { return t.GetVMProvider },
		insert: func(t Tables) func(context.Context, domain.Provider) (domain.Provider, error) {
			return t.InsertVMProvider
		},
		update: func(t Tables) func(context.Context, domain.Provider) (domain.Provider, error) {
			return t.UpdateVMProvider
		},
		remove: func(t Tables) func(context.Context, string) error { return t.DeleteVMProvider },
	}
	dnsProviderKind = providerKind{kind: KindDNSProvider, noun: "DNS provider",
		validateCreate: domain.ProviderCreate.ValidateDNS, validateUpdate: domain.ProviderUpdate.ValidateDNS,
		check: domain.Provider.CheckDNS, moved: domain.Provider.MovedDNS,
		liveAgents: func(t Tables) func(context.Context, string) (int, error) { return t.CountDNSProviderAgents },
		get:        func(t Tables) func(context.Context, string, Lock) (domain.Provider, error) { return t.GetDNSProvider },
		insert: func(t Tables) func(context.Context, domain.Provider) (domain.Provider, error) {
			return t.InsertDNSProvider
		},
		update: func(t Tables) func(context.Context, domain.Provider) (domain.Provider, error) {
			return t.UpdateDNSProvider
		},
		remove: func(t Tables) func(context.Context, string) error { return t.DeleteDNSProvider },
	}
)

// ListVMProviders returns one page (p) of every VM provider, secrets left
// out.
func (a *App) ListVMProviders(ctx context.Context, p domain.Page) (domain.Paged[domain.Provider], error) {
	ps, err := a.store.ListVMProviders(ctx, p)
	for i := range ps.Items {
		showFingerprint(&ps.Items[i])
	}
	return paged(ps, err)
}

// GetVMProvider returns the VM provider named name, secrets left out.
func (a *App) GetVMProvider(ctx context.Context, name string) (domain.Provider, error) {
	return a.getProvider(ctx, vmProviderKind, name)
}

// CreateVMProvider stores a new VM provider with a certificate authority
// of its own: it signs the certificate each of its machines' engines
// serves and the client certificate the provisioners present to them.
func (a *App) CreateVMProvider(ctx context.Context, in domain.ProviderCreate) (domain.Provider, error) {
	return a.createProvider(ctx, vmProviderKind, in, func(p *domain.Provider) error {
		caCert, caKey, err := pki.NewCA("greenroom vm provider " + p.Name)
		if err != nil {
			return err
		}
		clientCert, clientKey, err := pki.Issue(caCert, caKey, pki.Client, "greenroom-provisioner", nil, nil, 10*365*24*time.Hour)
		if err != nil {
			return err
		}
		p.ProviderTLS = domain.ProviderTLS{CACert: string(caCert), CAKey: string(caKey),
			ClientCert: string(clientCert), ClientKey: string(clientKey)}
		return nil
	})
}

// UpdateVMProvider changes the VM provider named name; its certificate
// authority stays.
func (a *App) UpdateVMProvider(ctx context.Context, name string, in domain.ProviderUpdate) (domain.Provider, error) {
	return a.updateProvider(ctx, vmProviderKind, name, in)
}

// DeleteVMProvider deletes the VM provider named name, unless an
// autoscale config or a machine's agent uses it.
func (a *App) DeleteVMProvider(ctx context.Context, name string) error {
	return a.deleteProvider(ctx, vmProviderKind, name)
}

// ListDNSProviders returns one page (p) of every DNS provider, secrets
// left out.
func (a *App) ListDNSProviders(ctx context.Context, p domain.Page) (domain.Paged[domain.Provider], error) {
	return paged(a.store.ListDNSProviders(ctx, p))
}

// GetDNSProvider returns the DNS provider named name, secrets left out.
func (a *App) GetDNSProvider(ctx context.Context, name string) (domain.Provider, error) {
	return a.getProvider(ctx, dnsProviderKind, name)
}

// CreateDNSProvider stores a new DNS provider.
func (a *App) CreateDNSProvider(ctx context.Context, in domain.ProviderCreate) (domain.Provider, error) {
	return a.createProvider(ctx, dnsProviderKind, in, nil)
}

// UpdateDNSProvider changes the DNS provider named name.
func (a *App) UpdateDNSProvider(ctx context.Context, name string, in domain.ProviderUpdate) (domain.Provider, error) {
	return a.updateProvider(ctx, dnsProviderKind, name, in)
}

// DeleteDNSProvider deletes the DNS provider named name, unless an
// autoscale config uses it.
func (a *App) DeleteDNSProvider(ctx context.Context, name string) error {
	return a.deleteProvider(ctx, dnsProviderKind, name)
}

func (a *App) getProvider(ctx context.Context, k providerKind, name string) (domain.Provider, error) {
	p, err := k.get(a.store)(ctx, name, NoLock)
	showFingerprint(&p)
	return p, notFoundOr(err, "no %s named %q", k.noun, name)
}

// showFingerprint sets the fingerprint of a VM provider's certificate
// authority, which an operator compares with a machine's.
func showFingerprint(p *domain.Provider) {
	if p.CACert != "" {
		p.CAFingerprint, _ = pki.Fingerprint([]byte(p.CACert))
	}
}

func (a *App) createProvider(ctx context.Context, k providerKind, in domain.ProviderCreate, prepare func(*domain.Provider) error) (domain.Provider, error) {
	if errs := k.validateCreate(in); len(errs) > 0 {
		return domain.Provider{}, invalid(errs)
	}
	p := in.Provider()
	if errs := k.check(p); len(errs) > 0 {
		return domain.Provider{}, invalid(errs)
	}
	p.ID = domain.NewID()
	if prepare != nil {
		if err := prepare(&p); err != nil {
			return domain.Provider{}, fmt.Errorf("making the certificate authority of %s %q: %w", k.noun, p.Name, err)
		}
	}
	err := a.change(ctx, k.kind, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		p, err = k.insert(tx)(ctx, p)
		return p.ID, p.Name, err
	})
	showFingerprint(&p)
	return p, explain(err, fmt.Sprintf("%s %q", k.noun, in.Name.Value))
}

func (a *App) updateProvider(ctx context.Context, k providerKind, name string, in domain.ProviderUpdate) (domain.Provider, error) {
	if errs := k.validateUpdate(in); len(errs) > 0 {
		return domain.Provider{}, invalid(errs)
	}
	var p domain.Provider
	err := a.change(ctx, k.kind, OpUpdated, name, func(tx Tx) (_, _ string, err error) {
		if p, err = k.get(tx)(ctx, name, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no %s named %q", k.noun, name)
		}
		old := p
		in.Apply(&p)
		if p.Type != old.Type && !in.Settings.Set {
			return "", "", fieldError(Invalid, "settings", "are required with a new type: the %s settings do not fit a %s provider", old.Type, p.Type)
		}
		if errs := k.check(p); len(errs) > 0 {
			return "", "", invalid(errs)
		}
		if field := k.moved(p, old); field != "" {
			n, err := k.liveAgents(tx)(ctx, p.ID)
			if err != nil {
				return "", "", err
			}
			if n > 0 {
				return "", "", fieldError(Conflict, field,
					"%s %q has %d agent(s) whose machines or records it holds; they would be left behind: let them go first (min_agents and the standby at 0 drain them)", k.noun, old.Name, n)
			}
		}
		p, err = k.update(tx)(ctx, p)
		return p.ID, p.Name, err
	})
	showFingerprint(&p)
	return p, explain(err, fmt.Sprintf("%s %q", k.noun, in.Name.Or(name)))
}

func (a *App) deleteProvider(ctx context.Context, k providerKind, name string) error {
	err := a.change(ctx, k.kind, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		p, err := k.get(tx)(ctx, name, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no %s named %q", k.noun, name)
		}
		return p.ID, p.Name, k.remove(tx)(ctx, p.ID)
	})
	return explain(err, fmt.Sprintf("%s %q", k.noun, name))
}

// ListAutoscaleConfigs returns one page (p) of every autoscale config
// with its agents.
func (a *App) ListAutoscaleConfigs(ctx context.Context, p domain.Page) (domain.Paged[domain.AutoscaleConfig], error) {
	return paged(a.store.ListAutoscaleConfigs(ctx, p))
}

// GetAutoscaleConfig returns the autoscale config named name.
func (a *App) GetAutoscaleConfig(ctx context.Context, name string) (domain.AutoscaleConfig, error) {
	c, err := a.store.GetAutoscaleConfig(ctx, name, NoLock)
	return c, notFoundOr(err, "no autoscale config named %q", name)
}

// CreateAutoscaleConfig stores a new autoscale config for a docker_agent
// pool in a zone; the provisioners' autoscaler acts on it from then on.
func (a *App) CreateAutoscaleConfig(ctx context.Context, in domain.AutoscaleConfigCreate) (domain.AutoscaleConfig, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.AutoscaleConfig{}, invalid(errs)
	}
	c := in.AutoscaleConfig()
	if errs := c.Validate(); len(errs) > 0 {
		return domain.AutoscaleConfig{}, invalid(errs)
	}
	c.ID = domain.NewID()
	err := a.change(ctx, KindAutoscaleConfig, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		if err := resolveAutoscaleRefs(ctx, tx, &c, allAutoscaleRefs); err != nil {
			return "", "", err
		}
		if err := standbyGPUsMet(ctx, tx, c); err != nil {
			return "", "", err
		}
		c, err = tx.InsertAutoscaleConfig(ctx, c)
		return c.ID, c.Name, err
	})
	return c, explain(err, fmt.Sprintf("autoscale config %q", in.Name.Value))
}

// UpdateAutoscaleConfig changes the autoscale config named name. Its pool
// and zone cannot change while it has agents: they were made for them.
func (a *App) UpdateAutoscaleConfig(ctx context.Context, name string, in domain.AutoscaleConfigUpdate) (domain.AutoscaleConfig, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.AutoscaleConfig{}, invalid(errs)
	}
	var c domain.AutoscaleConfig
	err := a.change(ctx, KindAutoscaleConfig, OpUpdated, name, func(tx Tx) (_, _ string, err error) {
		if c, err = tx.GetAutoscaleConfig(ctx, name, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no autoscale config named %q", name)
		}
		old := c
		in.Apply(&c)
		if errs := c.Validate(); len(errs) > 0 {
			return "", "", invalid(errs)
		}
		if len(old.Agents) > 0 {
			for _, f := range []struct {
				field    string
				old, new string
			}{{"pool", old.Pool, c.Pool}, {"zone", old.Zone, c.Zone}, {"vm_provider", old.VMProvider, c.VMProvider},
				{"dns_provider", deref(old.DNSProvider), deref(c.DNSProvider)}} {
				if f.old != f.new {
					return "", "", fieldError(Conflict, f.field,
						"autoscale config %q has %d agent(s) made for %s %q; let them go first (min_agents and the standby at 0 drain them)",
						old.Name, len(old.Agents), f.field, f.old)
				}
			}
		}
		if err := resolveAutoscaleRefs(ctx, tx, &c, autoscaleRefs{
			pool: in.Pool.Set, zone: in.Zone.Set, vm: in.VMProvider.Set, dns: in.DNSProvider.Set,
		}); err != nil {
			return "", "", err
		}
		if err := standbyGPUsMet(ctx, tx, c); err != nil {
			return "", "", err
		}
		c, err = tx.UpdateAutoscaleConfig(ctx, c)
		return c.ID, c.Name, err
	})
	return c, explain(err, fmt.Sprintf("autoscale config %q", in.Name.Or(name)))
}

// DeleteAutoscaleConfig deletes the autoscale config named name, unless it
// still has agents (409): its machines must be drained and deleted first,
// which setting enabled to false does not do, and min_agents and
// max_agents do.
func (a *App) DeleteAutoscaleConfig(ctx context.Context, name string) error {
	err := a.change(ctx, KindAutoscaleConfig, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		c, err := tx.GetAutoscaleConfig(ctx, name, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no autoscale config named %q", name)
		}
		if len(c.Agents) > 0 {
			return "", "", conflict("autoscale config %q still has %d agent(s) (%s); set min_agents to 0 and standby to 0 and let them drain, then delete it",
				c.Name, len(c.Agents), quoted(names(c.Agents, func(a domain.AutoscaledAgent) string { return a.Name })))
		}
		return c.ID, c.Name, tx.DeleteAutoscaleConfig(ctx, c.ID)
	})
	return explain(err, fmt.Sprintf("autoscale config %q", name))
}

// autoscaleRefs says which references of an autoscale config to resolve.
type autoscaleRefs struct{ pool, zone, vm, dns bool }

var allAutoscaleRefs = autoscaleRefs{pool: true, zone: true, vm: true, dns: true}

// resolveAutoscaleRefs sets the ids of the pool, zone and providers c
// names, each kept from changing until the transaction ends.
func resolveAutoscaleRefs(ctx context.Context, tx Tx, c *domain.AutoscaleConfig, refs autoscaleRefs) error {
	if refs.pool {
		p, err := poolRef(ctx, tx, "pool", &c.Pool, domain.PoolDockerAgent)
		if err != nil {
			return err
		}
		c.PoolID = p.ID
	}
	if refs.zone {
		z, err := zoneRef(ctx, tx, "zone", c.Zone)
		if err != nil {
			return err
		}
		c.ZoneID = z.ID
	}
	if refs.vm {
		p, err := tx.GetVMProvider(ctx, c.VMProvider, ForShare)
		if err != nil {
			return refError(err, Invalid, "vm_provider", "VM provider", c.VMProvider)
		}
		c.VMProviderID = p.ID
	}
	if refs.dns {
		c.DNSProviderID = nil
		if c.DNSProvider != nil {
			p, err := tx.GetDNSProvider(ctx, *c.DNSProvider, ForShare)
			if err != nil {
				return refError(err, Invalid, "dns_provider", "DNS provider", *c.DNSProvider)
			}
			c.DNSProviderID = &p.ID
		}
	}
	return nil
}

// standbyGPUsMet refuses (400) a GPU standby that no machine of c's VM
// provider brings: the autoscaler would add agents up to max_agents
// without ever meeting it.
func standbyGPUsMet(ctx context.Context, tx Tx, c domain.AutoscaleConfig) error {
	if c.StandbyGPUs == 0 {
		return nil
	}
	p, err := tx.GetVMProvider(ctx, c.VMProvider, NoLock)
	if err != nil {
		return refError(err, Invalid, "vm_provider", "VM provider", c.VMProvider)
	}
	if p.MachineGPUs() == 0 {
		return fieldError(Invalid, "standby_gpus", "is %d, but the machines of VM provider %q have no GPUs (its settings' gpus)", c.StandbyGPUs, p.Name)
	}
	return nil
}
