package app

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListPools returns one page (p) of every pool with its members and workspaces.
func (a *App) ListPools(ctx context.Context, p domain.Page) (domain.Paged[domain.Pool], error) {
	var ps domain.Paged[domain.Pool]
	err := a.store.Snapshot(ctx, func(tx Tables) (err error) {
		if ps, err = tx.ListPools(ctx, p); err != nil {
			return err
		}
		return setMembers(ctx, tx, ps.Items)
	})
	return paged(ps, err)
}

// GetPool returns the pool named name with its members and workspaces.
func (a *App) GetPool(ctx context.Context, name string) (domain.Pool, error) {
	var p domain.Pool
	err := a.store.Snapshot(ctx, func(tx Tables) (err error) {
		if p, err = tx.GetPool(ctx, name, NoLock); err != nil {
			return notFoundOr(err, "no pool named %q", name)
		}
		p, err = withMembers(ctx, tx, p)
		return err
	})
	return p, err
}

// setMembers fills in the members and workspaces of the pools ps. The
// members' session counts come from the sessions table, counted by the
// queries that read the members, so they never drift from the sessions.
func setMembers(ctx context.Context, q Tables, ps []domain.Pool) error {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	servers, err := q.ListServersInPools(ctx, ids)
	if err != nil {
		return err
	}
	agents, err := q.ListAgentsInPools(ctx, ids)
	if err != nil {
		return err
	}
	workspaces, err := q.ListWorkspacesOfServerPools(ctx, ids)
	if err != nil {
		return err
	}
	for i := range ps {
		ps[i].SetMembers(servers, agents, workspaces)
	}
	return nil
}

// withMembers returns p with its members and workspaces.
func withMembers(ctx context.Context, q Tables, p domain.Pool) (domain.Pool, error) {
	ps := []domain.Pool{p}
	err := setMembers(ctx, q, ps)
	return ps[0], err
}

// CreatePool stores a new pool; it has no members yet.
func (a *App) CreatePool(ctx context.Context, in domain.PoolCreate) (domain.Pool, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Pool{}, invalid(errs)
	}
	p := in.Pool()
	if errs := p.Validate(); len(errs) > 0 {
		return domain.Pool{}, invalid(errs)
	}
	p.ID = domain.NewID()
	err := a.change(ctx, KindPool, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		p, err = tx.InsertPool(ctx, p)
		p.SetMembers(nil, nil, nil)
		return p.ID, p.Name, err
	})
	return p, explain(err, fmt.Sprintf("pool %q", in.Name.Value))
}

// UpdatePool changes the pool named name. Its type cannot change while
// agents, servers or workspaces are in it: they chose it for its type. Its
// server assignment cannot be turned off while servers of the pool are
// assigned to users: they would keep users the pool no longer assigns.
func (a *App) UpdatePool(ctx context.Context, name string, in domain.PoolUpdate) (domain.Pool, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Pool{}, invalid(errs)
	}
	var p domain.Pool
	err := a.change(ctx, KindPool, OpUpdated, name, func(tx Tx) (_, _ string, err error) {
		// The lock keeps agents, servers and workspaces from joining the
		// pool, and servers from being assigned, until this commits: they
		// read the pool FOR SHARE.
		if p, err = tx.GetPool(ctx, name, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no pool named %q", name)
		}
		old := p
		in.Apply(&p)
		if errs := p.Validate(); len(errs) > 0 {
			return "", "", invalid(errs)
		}
		if err := poolChangeAllowed(ctx, tx, old, p); err != nil {
			return "", "", err
		}
		if p, err = tx.UpdatePool(ctx, p); err != nil {
			return "", "", err
		}
		p, err = withMembers(ctx, tx, p)
		return p.ID, p.Name, err
	})
	return p, explain(err, fmt.Sprintf("pool %q", in.Name.Or(name)))
}

// poolChangeAllowed refuses (409) a change from old to p that what is in
// the pool forbids.
func poolChangeAllowed(ctx context.Context, tx Tx, old, p domain.Pool) error {
	if p.Type != old.Type {
		n, err := tx.CountPoolReferrers(ctx, old.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return fieldError(Conflict, "type",
				"pool %q has %d member(s) (agents, servers or workspaces) that need a %s pool; move them first", old.Name, n, old.Type)
		}
	}
	if old.ServerAssignment && !p.ServerAssignment {
		n, err := tx.CountAssignedServers(ctx, old.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return fieldError(Conflict, "server_assignment",
				"pool %q has %d server(s) assigned to a user; set their assigned_user to null first, then turn server_assignment off", old.Name, n)
		}
	}
	return nil
}

// DeletePool deletes the pool named name, unless something refers to it.
func (a *App) DeletePool(ctx context.Context, name string) error {
	err := a.change(ctx, KindPool, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		p, err := tx.GetPool(ctx, name, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no pool named %q", name)
		}
		return p.ID, p.Name, tx.DeletePool(ctx, p.ID)
	})
	return explain(err, fmt.Sprintf("pool %q", name))
}
