package app

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/services/config/adapters"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListPools returns every pool.
func (a *App) ListPools(ctx context.Context) ([]domain.Pool, error) {
	return adapters.ListPools(ctx, a.db)
}

// GetPool returns the pool named name.
func (a *App) GetPool(ctx context.Context, name string) (domain.Pool, error) {
	p, err := adapters.GetPool(ctx, a.db, name, adapters.NoLock)
	return p, notFoundOr(err, "no pool named %q", name)
}

// CreatePool stores a new pool.
func (a *App) CreatePool(ctx context.Context, in domain.PoolCreate) (domain.Pool, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Pool{}, invalid(errs)
	}
	p := in.Pool()
	p.ID = domain.NewID()
	err := a.change(ctx, KindPool, OpCreated, func(tx *sqlx.Tx) (_, _ string, err error) {
		p, err = adapters.InsertPool(ctx, tx, p)
		return p.ID, p.Name, err
	})
	return p, explain(err, fmt.Sprintf("pool %q", in.Name.Value))
}

// UpdatePool changes the pool named name. Its type cannot change while
// agents, servers or workspaces are in it: they chose it for its type.
func (a *App) UpdatePool(ctx context.Context, name string, in domain.PoolUpdate) (domain.Pool, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Pool{}, invalid(errs)
	}
	var p domain.Pool
	err := a.change(ctx, KindPool, OpUpdated, func(tx *sqlx.Tx) (_, _ string, err error) {
		if p, err = adapters.GetPool(ctx, tx, name, adapters.ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no pool named %q", name)
		}
		if in.Type.Has() && in.Type.Value != p.Type {
			n, err := adapters.PoolMembers(ctx, tx, p.ID)
			if err != nil {
				return "", "", err
			}
			if n > 0 {
				return "", "", fieldError(Conflict, "type",
					"pool %q has %d member(s) (agents, servers or workspaces) that need a %s pool; move them first", p.Name, n, p.Type)
			}
		}
		in.Apply(&p)
		p, err = adapters.UpdatePool(ctx, tx, p)
		return p.ID, p.Name, err
	})
	return p, explain(err, fmt.Sprintf("pool %q", in.Name.Or(name)))
}

// DeletePool deletes the pool named name, unless something refers to it.
func (a *App) DeletePool(ctx context.Context, name string) error {
	err := a.change(ctx, KindPool, OpDeleted, func(tx *sqlx.Tx) (_, _ string, err error) {
		p, err := adapters.GetPool(ctx, tx, name, adapters.ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no pool named %q", name)
		}
		return p.ID, p.Name, adapters.DeletePool(ctx, tx, p.ID)
	})
	return explain(err, fmt.Sprintf("pool %q", name))
}
