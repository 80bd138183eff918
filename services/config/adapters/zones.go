package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

const zoneSelect = `SELECT z.id, z.name, z.search_alternate_zones, z.allow_origin_domain,
	z.upstream_auth_address, z.load_balancing, z.priority, z.created_at, z.updated_at
	FROM zones z`

// GetZone loads the zone named name.
func (q Tables) GetZone(ctx context.Context, name string, lock app.Lock) (domain.Zone, error) {
	var z domain.Zone
	err := get(ctx, q, &z, fmt.Sprintf("zone %q", name), zoneSelect+` WHERE z.name = $1`+clause(lock, "z"), name)
	return z, err
}

// ListZones loads one page of the zones, by name.
func (q Tables) ListZones(ctx context.Context, p domain.Page) (domain.Paged[domain.Zone], error) {
	return listPage(ctx, q, "zones", zoneSelect, nil, nil,
		byName("z.name", func(v domain.Zone) string { return v.Name }), p)
}

// InsertZone stores a new zone and returns it as stored.
func (q Tables) InsertZone(ctx context.Context, z domain.Zone) (domain.Zone, error) {
	var out domain.Zone
	err := q.GetContext(ctx, &out, `INSERT INTO zones AS z
		(id, name, search_alternate_zones, allow_origin_domain, upstream_auth_address, load_balancing, priority)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING z.id, z.name, z.search_alternate_zones, z.allow_origin_domain,
			z.upstream_auth_address, z.load_balancing, z.priority, z.created_at, z.updated_at`,
		z.ID, z.Name, z.SearchAlternateZones, z.AllowOriginDomain, z.UpstreamAuthAddress, z.LoadBalancing, z.Priority)
	if err != nil {
		return domain.Zone{}, fmt.Errorf("inserting zone %q: %w", z.Name, err)
	}
	return out, nil
}

// UpdateZone stores every field of z and returns it as stored.
func (q Tables) UpdateZone(ctx context.Context, z domain.Zone) (domain.Zone, error) {
	var out domain.Zone
	err := get(ctx, q, &out, fmt.Sprintf("zone %q", z.Name), `UPDATE zones AS z
		SET name = $2, search_alternate_zones = $3, allow_origin_domain = $4, upstream_auth_address = $5,
			load_balancing = $6, priority = $7, updated_at = now()
		WHERE z.id = $1
		RETURNING z.id, z.name, z.search_alternate_zones, z.allow_origin_domain,
			z.upstream_auth_address, z.load_balancing, z.priority, z.created_at, z.updated_at`,
		z.ID, z.Name, z.SearchAlternateZones, z.AllowOriginDomain, z.UpstreamAuthAddress, z.LoadBalancing, z.Priority)
	return out, err
}

// DeleteZone deletes the zone with id; a foreign-key violation means
// something still refers to it.
func (q Tables) DeleteZone(ctx context.Context, id string) error {
	if err := purgeDeletedStagingConfigs(ctx, q, "zone_id", id); err != nil {
		return err
	}
	return exec(ctx, q, "deleting zone", `DELETE FROM zones WHERE id = $1`, id)
}
