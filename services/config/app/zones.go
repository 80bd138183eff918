package app

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/services/config/adapters"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListZones returns every zone.
func (a *App) ListZones(ctx context.Context) ([]domain.Zone, error) {
	return adapters.ListZones(ctx, a.db)
}

// GetZone returns the zone named name.
func (a *App) GetZone(ctx context.Context, name string) (domain.Zone, error) {
	z, err := adapters.GetZone(ctx, a.db, name, adapters.NoLock)
	return z, notFoundOr(err, "no zone named %q", name)
}

// CreateZone stores a new zone.
func (a *App) CreateZone(ctx context.Context, in domain.ZoneCreate) (domain.Zone, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Zone{}, invalid(errs)
	}
	z := in.Zone()
	z.ID = domain.NewID()
	err := a.change(ctx, KindZone, OpCreated, func(tx *sqlx.Tx) (_, _ string, err error) {
		z, err = adapters.InsertZone(ctx, tx, z)
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
	err := a.change(ctx, KindZone, OpUpdated, func(tx *sqlx.Tx) (_, _ string, err error) {
		// FOR UPDATE orders this against a staging config being created
		// for the zone, which reads it FOR SHARE.
		if z, err = adapters.GetZone(ctx, tx, name, adapters.ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no zone named %q", name)
		}
		if field := in.SetsRequestHost(); field != "" {
			n, err := adapters.CountLiveStagingConfigsInZone(ctx, tx, z.ID)
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
		z, err = adapters.UpdateZone(ctx, tx, z)
		return z.ID, z.Name, err
	})
	return z, explain(err, fmt.Sprintf("zone %q", in.Name.Or(name)))
}

// DeleteZone deletes the zone named name, unless something refers to it.
func (a *App) DeleteZone(ctx context.Context, name string) error {
	err := a.change(ctx, KindZone, OpDeleted, func(tx *sqlx.Tx) (_, _ string, err error) {
		z, err := adapters.GetZone(ctx, tx, name, adapters.ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no zone named %q", name)
		}
		return z.ID, z.Name, adapters.DeleteZone(ctx, tx, z.ID)
	})
	return explain(err, fmt.Sprintf("zone %q", name))
}
