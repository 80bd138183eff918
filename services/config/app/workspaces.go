package app

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/services/config/adapters"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListWorkspaces returns every workspace.
func (a *App) ListWorkspaces(ctx context.Context) ([]domain.Workspace, error) {
	return adapters.ListWorkspaces(ctx, a.db)
}

// GetWorkspace returns the workspace named name.
func (a *App) GetWorkspace(ctx context.Context, name string) (domain.Workspace, error) {
	w, err := adapters.GetWorkspace(ctx, a.db, name, adapters.NoLock)
	return w, notFoundOr(err, "no workspace named %q", name)
}

// CreateWorkspace stores a new workspace.
func (a *App) CreateWorkspace(ctx context.Context, in domain.WorkspaceCreate) (domain.Workspace, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Workspace{}, invalid(errs)
	}
	w := in.Workspace()
	w.ID = domain.NewID()
	err := a.change(ctx, KindWorkspace, OpCreated, func(tx *sqlx.Tx) (_, _ string, err error) {
		p, err := poolRef(ctx, tx, "server_pool", w.ServerPool, domain.PoolServer)
		if err != nil {
			return "", "", err
		}
		w.ServerPoolID = poolID(p)
		w, err = adapters.InsertWorkspace(ctx, tx, w)
		return w.ID, w.Name, err
	})
	return w, explain(err, fmt.Sprintf("workspace %q", in.Name.Value))
}

// UpdateWorkspace changes the workspace named name. The provisioner hears
// of it and replaces staged sessions started from the old settings.
func (a *App) UpdateWorkspace(ctx context.Context, name string, in domain.WorkspaceUpdate) (domain.Workspace, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Workspace{}, invalid(errs)
	}
	var w domain.Workspace
	err := a.change(ctx, KindWorkspace, OpUpdated, func(tx *sqlx.Tx) (_, _ string, err error) {
		if w, err = adapters.GetWorkspace(ctx, tx, name, adapters.ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no workspace named %q", name)
		}
		in.Apply(&w)
		if in.ServerPool.Set {
			p, err := poolRef(ctx, tx, "server_pool", w.ServerPool, domain.PoolServer)
			if err != nil {
				return "", "", err
			}
			w.ServerPoolID = poolID(p)
		}
		w, err = adapters.UpdateWorkspace(ctx, tx, w)
		return w.ID, w.Name, err
	})
	return w, explain(err, fmt.Sprintf("workspace %q", in.Name.Or(name)))
}

// DeleteWorkspace deletes the workspace named name, unless staging configs
// or sessions refer to it.
func (a *App) DeleteWorkspace(ctx context.Context, name string) error {
	err := a.change(ctx, KindWorkspace, OpDeleted, func(tx *sqlx.Tx) (_, _ string, err error) {
		w, err := adapters.GetWorkspace(ctx, tx, name, adapters.ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no workspace named %q", name)
		}
		return w.ID, w.Name, adapters.DeleteWorkspace(ctx, tx, w.ID)
	})
	return explain(err, fmt.Sprintf("workspace %q", name))
}
