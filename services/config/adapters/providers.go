package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// providerTable is one of the two tables of providers: vm_providers, whose
// rows also hold their certificate authority, and dns_providers.
type providerTable struct {
	table, noun string
	tls         bool
}

var (
	vmProviders  = providerTable{table: "vm_providers", noun: "VM provider", tls: true}
	dnsProviders = providerTable{table: "dns_providers", noun: "DNS provider"}
)

func (t providerTable) columns() string {
	cols := `pr.id, pr.name, pr.type, pr.settings, pr.secrets, pr.created_at, pr.updated_at`
	if t.tls {
		cols += `, pr.tls_ca_cert, pr.tls_ca_key, pr.tls_client_cert, pr.tls_client_key`
	}
	return cols
}

func (t providerTable) get(ctx context.Context, q Queryer, name string, lock app.Lock) (domain.Provider, error) {
	var p domain.Provider
	err := get(ctx, q, &p, fmt.Sprintf("%s %q", t.noun, name),
		`SELECT `+t.columns()+` FROM `+t.table+` pr WHERE pr.name = $1`+clause(lock, "pr"), name)
	p.ShowSecrets()
	return p, err
}

func (t providerTable) list(ctx context.Context, q Queryer, page domain.Page) (domain.Paged[domain.Provider], error) {
	ps, err := listPage(ctx, q, t.table, `SELECT `+t.columns()+` FROM `+t.table+` pr`, nil, nil,
		byName("pr.name", func(v domain.Provider) string { return v.Name }), page)
	for i := range ps.Items {
		ps.Items[i].ShowSecrets()
	}
	return ps, err
}

func (t providerTable) insert(ctx context.Context, q Queryer, p domain.Provider) (domain.Provider, error) {
	var err error
	if t.tls {
		_, err = q.ExecContext(ctx, `INSERT INTO vm_providers
			(id, name, type, settings, secrets, tls_ca_cert, tls_ca_key, tls_client_cert, tls_client_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			p.ID, p.Name, p.Type, p.Settings, p.Secrets, p.CACert, p.CAKey, p.ClientCert, p.ClientKey)
	} else {
		_, err = q.ExecContext(ctx, `INSERT INTO `+t.table+` (id, name, type, settings, secrets)
			VALUES ($1, $2, $3, $4, $5)`, p.ID, p.Name, p.Type, p.Settings, p.Secrets)
	}
	if err != nil {
		return domain.Provider{}, fmt.Errorf("inserting %s %q: %w", t.noun, p.Name, err)
	}
	return t.get(ctx, q, p.Name, app.NoLock)
}

// update stores name, type, settings and secrets (never the certificate
// authority, made once).
func (t providerTable) update(ctx context.Context, q Queryer, p domain.Provider) (domain.Provider, error) {
	err := exec(ctx, q, fmt.Sprintf("updating %s %q", t.noun, p.Name), `UPDATE `+t.table+`
		SET name = $2, type = $3, settings = $4, secrets = $5, updated_at = now() WHERE id = $1`,
		p.ID, p.Name, p.Type, p.Settings, p.Secrets)
	if err != nil {
		return domain.Provider{}, err
	}
	return t.get(ctx, q, p.Name, app.NoLock)
}

func (t providerTable) delete(ctx context.Context, q Queryer, id string) error {
	return exec(ctx, q, "deleting "+t.noun, `DELETE FROM `+t.table+` WHERE id = $1`, id)
}

// GetVMProvider loads the VM provider named name.
func (q Tables) GetVMProvider(ctx context.Context, name string, lock app.Lock) (domain.Provider, error) {
	return vmProviders.get(ctx, q, name, lock)
}

// ListVMProviders loads one page of the VM providers, by name.
func (q Tables) ListVMProviders(ctx context.Context, p domain.Page) (domain.Paged[domain.Provider], error) {
	return vmProviders.list(ctx, q, p)
}

// InsertVMProvider stores a new VM provider with its certificate authority.
func (q Tables) InsertVMProvider(ctx context.Context, p domain.Provider) (domain.Provider, error) {
	return vmProviders.insert(ctx, q, p)
}

// UpdateVMProvider stores p's name, type, settings and secrets.
func (q Tables) UpdateVMProvider(ctx context.Context, p domain.Provider) (domain.Provider, error) {
	return vmProviders.update(ctx, q, p)
}

// DeleteVMProvider deletes the VM provider with id; a foreign-key
// violation means an autoscale config or an agent still uses it.
func (q Tables) DeleteVMProvider(ctx context.Context, id string) error {
	return vmProviders.delete(ctx, q, id)
}

// GetDNSProvider loads the DNS provider named name.
func (q Tables) GetDNSProvider(ctx context.Context, name string, lock app.Lock) (domain.Provider, error) {
	return dnsProviders.get(ctx, q, name, lock)
}

// ListDNSProviders loads one page of the DNS providers, by name.
func (q Tables) ListDNSProviders(ctx context.Context, p domain.Page) (domain.Paged[domain.Provider], error) {
	return dnsProviders.list(ctx, q, p)
}

// InsertDNSProvider stores a new DNS provider.
func (q Tables) InsertDNSProvider(ctx context.Context, p domain.Provider) (domain.Provider, error) {
	return dnsProviders.insert(ctx, q, p)
}

// UpdateDNSProvider stores p's name, type, settings and secrets.
func (q Tables) UpdateDNSProvider(ctx context.Context, p domain.Provider) (domain.Provider, error) {
	return dnsProviders.update(ctx, q, p)
}

// DeleteDNSProvider deletes the DNS provider with id; a foreign-key
// violation means an autoscale config still uses it.
func (q Tables) DeleteDNSProvider(ctx context.Context, id string) error {
	return dnsProviders.delete(ctx, q, id)
}

// CountVMProviderAgents counts the agents whose machines the VM provider
// with id made and has not deleted.
func (q Tables) CountVMProviderAgents(ctx context.Context, id string) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM agents WHERE vm_provider_id = $1 AND lifecycle <> 'deleted'`, id)
	if err != nil {
		return 0, fmt.Errorf("counting the agents of VM provider %s: %w", id, err)
	}
	return n, nil
}

// CountDNSProviderAgents counts the agents, not deleted, of the autoscale
// configs that use the DNS provider with id.
func (q Tables) CountDNSProviderAgents(ctx context.Context, id string) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM agents a JOIN autoscale_configs ac ON ac.id = a.autoscale_config_id
		WHERE ac.dns_provider_id = $1 AND a.lifecycle <> 'deleted'`, id)
	if err != nil {
		return 0, fmt.Errorf("counting the agents of DNS provider %s: %w", id, err)
	}
	return n, nil
}
