package app

import (
	"context"
	"errors"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// refError turns a reference by name to nothing into an error of kind
// (Invalid in a configuration body, NotFound in a session request) naming
// the field; other errors pass.
func refError(err error, kind Kind, field, noun, name string) error {
	if errors.Is(err, ErrNotFound) {
		return fieldError(kind, field, "no %s named %q", noun, name)
	}
	return err
}

// zoneRef resolves the zone named in field, and keeps it from changing
// until the transaction ends.
func zoneRef(ctx context.Context, q Tables, field, name string) (domain.Zone, error) {
	z, err := q.GetZone(ctx, name, ForShare)
	return z, refError(err, Invalid, field, "zone", name)
}

// poolRef resolves the pool named in field (nil: none), which must be of
// type want, and keeps its type from changing until the transaction ends.
func poolRef(ctx context.Context, q Tables, field string, name *string, want string) (*domain.Pool, error) {
	if name == nil {
		return nil, nil
	}
	p, err := q.GetPool(ctx, *name, ForShare)
	if err != nil {
		return nil, refError(err, Invalid, field, "pool", *name)
	}
	if p.Type != want {
		return nil, fieldError(Invalid, field, "pool %q is a %s pool; a %s pool is needed here", p.Name, p.Type, want)
	}
	return &p, nil
}

// poolID is the id of p, or nil for no pool.
func poolID(p *domain.Pool) *string {
	if p == nil {
		return nil
	}
	return &p.ID
}

// webFilterPolicyRef resolves the web filter policy named in field (nil:
// none) to its id, and keeps it from being deleted until the transaction
// ends.
func webFilterPolicyRef(ctx context.Context, q Tables, field string, name *string) (*string, error) {
	if name == nil {
		return nil, nil
	}
	p, err := q.GetWebFilterPolicy(ctx, *name, ForShare)
	if err != nil {
		return nil, refError(err, Invalid, field, "web filter policy", *name)
	}
	return &p.ID, nil
}
