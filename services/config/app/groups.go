package app

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListGroups returns one page (p) of every group.
func (a *App) ListGroups(ctx context.Context, p domain.Page) (domain.Paged[domain.Group], error) {
	return paged(a.store.ListGroups(ctx, p))
}

// GetGroup returns the group named name.
func (a *App) GetGroup(ctx context.Context, name string) (domain.Group, error) {
	g, err := a.store.GetGroup(ctx, name, NoLock)
	return g, notFoundOr(err, "no group named %q", name)
}

// CreateGroup stores a new group.
func (a *App) CreateGroup(ctx context.Context, in domain.GroupCreate) (domain.Group, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Group{}, invalid(errs)
	}
	g := in.Group()
	g.ID = domain.NewID()
	err := a.change(ctx, KindGroup, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		if g.WebFilterPolicyID, err = webFilterPolicyRef(ctx, tx, "web_filter_policy", g.WebFilterPolicy); err != nil {
			return "", "", err
		}
		g, err = tx.InsertGroup(ctx, g)
		return g.ID, g.Name, err
	})
	return g, explain(err, fmt.Sprintf("group %q", in.Name.Value))
}

// UpdateGroup changes the group named name.
func (a *App) UpdateGroup(ctx context.Context, name string, in domain.GroupUpdate) (domain.Group, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Group{}, invalid(errs)
	}
	var g domain.Group
	err := a.change(ctx, KindGroup, OpUpdated, name, func(tx Tx) (_, _ string, err error) {
		if g, err = tx.GetGroup(ctx, name, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no group named %q", name)
		}
		in.Apply(&g)
		if in.WebFilterPolicy.Set {
			if g.WebFilterPolicyID, err = webFilterPolicyRef(ctx, tx, "web_filter_policy", g.WebFilterPolicy); err != nil {
				return "", "", err
			}
		}
		g, err = tx.UpdateGroup(ctx, g)
		return g.ID, g.Name, err
	})
	return g, explain(err, fmt.Sprintf("group %q", in.Name.Or(name)))
}

// DeleteGroup deletes the group named name and removes it from its members.
func (a *App) DeleteGroup(ctx context.Context, name string) error {
	err := a.change(ctx, KindGroup, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		g, err := tx.GetGroup(ctx, name, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no group named %q", name)
		}
		return g.ID, g.Name, tx.DeleteGroup(ctx, g.ID)
	})
	return explain(err, fmt.Sprintf("group %q", name))
}
