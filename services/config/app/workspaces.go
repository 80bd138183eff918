package app

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListWorkspaces returns one page (p) of every workspace.
func (a *App) ListWorkspaces(ctx context.Context, p domain.Page) (domain.Paged[domain.Workspace], error) {
	return paged(a.store.ListWorkspaces(ctx, p))
}

// GetWorkspace returns the workspace named name.
func (a *App) GetWorkspace(ctx context.Context, name string) (domain.Workspace, error) {
	w, err := a.store.GetWorkspace(ctx, name, NoLock)
	return w, notFoundOr(err, "no workspace named %q", name)
}

// CreateWorkspace stores a new workspace.
func (a *App) CreateWorkspace(ctx context.Context, in domain.WorkspaceCreate) (domain.Workspace, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Workspace{}, invalid(errs)
	}
	w := in.Workspace()
	if errs := w.Validate(); len(errs) > 0 {
		return domain.Workspace{}, invalid(errs)
	}
	w.ID = domain.NewID()
	err := a.change(ctx, KindWorkspace, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		p, err := poolRef(ctx, tx, "server_pool", w.ServerPool, domain.PoolServer)
		if err != nil {
			return "", "", err
		}
		w.ServerPoolID = poolID(p)
		if w.WebFilterPolicyID, err = webFilterPolicyRef(ctx, tx, "web_filter_policy", w.WebFilterPolicy); err != nil {
			return "", "", err
		}
		w, err = tx.InsertWorkspace(ctx, w)
		return w.ID, w.Name, err
	})
	return w, explain(err, fmt.Sprintf("workspace %q", in.Name.Value))
}

// UpdateWorkspace changes the workspace named name. A change of what
// shapes its containers raises its revision (the database does), and the
// provisioner replaces staged sessions of older revisions. It cannot move
// to a server pool while staging configs keep its sessions staged, nor
// lose its image while it has no server pool.
func (a *App) UpdateWorkspace(ctx context.Context, name string, in domain.WorkspaceUpdate) (domain.Workspace, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Workspace{}, invalid(errs)
	}
	var w domain.Workspace
	err := a.change(ctx, KindWorkspace, OpUpdated, name, func(tx Tx) (_, _ string, err error) {
		if w, err = tx.GetWorkspace(ctx, name, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no workspace named %q", name)
		}
		in.Apply(&w)
		if errs := w.Validate(); len(errs) > 0 {
			return "", "", invalid(errs)
		}
		if in.WebFilterPolicy.Set {
			if w.WebFilterPolicyID, err = webFilterPolicyRef(ctx, tx, "web_filter_policy", w.WebFilterPolicy); err != nil {
				return "", "", err
			}
		}
		if in.ServerPool.Set {
			p, err := poolRef(ctx, tx, "server_pool", w.ServerPool, domain.PoolServer)
			if err != nil {
				return "", "", err
			}
			w.ServerPoolID = poolID(p)
		}
		if in.ServerPool.Has() {
			if err := serverPoolAllowed(ctx, tx, w); err != nil {
				return "", "", err
			}
		}
		w, err = tx.UpdateWorkspace(ctx, w)
		return w.ID, w.Name, err
	})
	return w, explain(err, fmt.Sprintf("workspace %q", in.Name.Or(name)))
}

// serverPoolAllowed refuses (409) to give w a server pool while staging
// configs keep its sessions staged: sessions on fixed servers are
// assignments, not containers, and cannot be staged. w was read FOR UPDATE,
// which keeps a staging config from being created for it meanwhile.
func serverPoolAllowed(ctx context.Context, tx Tx, w domain.Workspace) error {
	n, err := tx.CountLiveStagingConfigsOfWorkspace(ctx, w.ID)
	if err != nil {
		return err
	}
	if n > 0 {
		return fieldError(Conflict, "server_pool",
			"workspace %q has %d staging config(s); sessions on a server pool's servers cannot be staged: delete the staging configs first", w.Name, n)
	}
	return nil
}

// DeleteWorkspace deletes the workspace named name, unless staging configs
// or sessions refer to it.
func (a *App) DeleteWorkspace(ctx context.Context, name string) error {
	err := a.change(ctx, KindWorkspace, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		w, err := tx.GetWorkspace(ctx, name, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no workspace named %q", name)
		}
		// Counted after the lock: a session being made for the workspace
		// either committed before (and is seen) or waits for this
		// transaction and then finds the workspace gone.
		live, err := tx.CountLiveSessionsOfWorkspace(ctx, w.ID)
		if err != nil {
			return "", "", err
		}
		if live > 0 {
			return "", "", conflict("workspace %q has %d live session(s) (not destroyed or failed); destroy them or wait for them to end, then delete the workspace", w.Name, live)
		}
		return w.ID, w.Name, tx.DeleteWorkspace(ctx, w.ID)
	})
	return explain(err, fmt.Sprintf("workspace %q", name))
}
