package app

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListZones returns one page (p) of every zone.
func (a *App) ListZones(ctx context.Context, p domain.Page) (domain.Paged[domain.Zone], error) {
	return paged(a.store.ListZones(ctx, p))
}

// GetZone returns the zone named name.
func (a *App) GetZone(ctx context.Context, name string) (domain.Zone, error) {
	z, err := a.store.GetZone(ctx, name, NoLock)
	return z, notFoundOr(err, "no zone named %q", name)
}

// CreateZone stores a new zone.
func (a *App) CreateZone(ctx context.Context, in domain.ZoneCreate) (domain.Zone, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Zone{}, invalid(errs)
	}
	z := in.Zone()
	z.ID = domain.NewID()
	err := a.change(ctx, KindZone, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		z, err = tx.InsertZone(ctx, z)
		return z.ID, z.Name, err
	})
	return z, explain(err, fmt.Sprintf("zone %q", in.Name.Value))
}

// UpdateZone changes the zone named name. Setting allow_origin_domain or
// upstream_auth_address back to $request_host$ is refused while a staging
// config targets the zone: its staged sessions could not be reached.
func (a *App) UpdateZone(ctx context.Context, name string, in domain.ZoneUpdate) (domain.Zone, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Zone{}, invalid(errs)
	}
	var z domain.Zone
	err := a.change(ctx, KindZone, OpUpdated, name, func(tx Tx) (_, _ string, err error) {
		// FOR UPDATE orders this against a staging config being created
		// for the zone, which reads it FOR SHARE.
		if z, err = tx.GetZone(ctx, name, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no zone named %q", name)
		}
		if field := in.SetsRequestHost(); field != "" {
			n, err := tx.CountLiveStagingConfigsInZone(ctx, z.ID)
			if err != nil {
				return "", "", err
			}
			if n > 0 {
				return "", "", fieldError(Conflict, field,
					"cannot be %s while %d staging config(s) target zone %q: staged sessions are started before any request, so they need the real domain; delete the staging configs first",
					domain.RequestHost, n, z.Name)
			}
		}
		in.Apply(&z)
		z, err = tx.UpdateZone(ctx, z)
		return z.ID, z.Name, err
	})
	return z, explain(err, fmt.Sprintf("zone %q", in.Name.Or(name)))
}

// DeleteZone deletes the zone named name, unless something refers to it.
func (a *App) DeleteZone(ctx context.Context, name string) error {
	err := a.change(ctx, KindZone, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		z, err := tx.GetZone(ctx, name, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no zone named %q", name)
		}
		return z.ID, z.Name, tx.DeleteZone(ctx, z.ID)
	})
	return explain(err, fmt.Sprintf("zone %q", name))
}
