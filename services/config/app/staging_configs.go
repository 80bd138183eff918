package app

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListStagingConfigs returns one page (p) of every staging config with its current state.
func (a *App) ListStagingConfigs(ctx context.Context, p domain.Page) (domain.Paged[domain.StagingConfig], error) {
	return paged(a.store.ListStagingConfigs(ctx, p))
}

// GetStagingConfig returns the staging config with id.
func (a *App) GetStagingConfig(ctx context.Context, id string) (domain.StagingConfig, error) {
	if err := checkID(id); err != nil {
		return domain.StagingConfig{}, err
	}
	sc, err := a.store.GetStagingConfig(ctx, id, NoLock)
	return sc, notFoundOr(err, "no staging config with id %s", id)
}

// CreateStagingConfig asks for sessions of a workspace to be kept staged in
// a zone; the provisioner starts filling the pool when it hears of it. The
// zone must name its real domain: staged sessions cannot use $request_host$;
// and the workspace must run in containers: sessions on a server pool's
// fixed servers cannot be staged.
func (a *App) CreateStagingConfig(ctx context.Context, in domain.StagingConfigCreate) (domain.StagingConfig, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.StagingConfig{}, invalid(errs)
	}
	sc := in.StagingConfig()
	sc.ID = domain.NewID()
	err := a.change(ctx, KindStagingConfig, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		// zoneRef reads the zone FOR SHARE: it cannot go back to
		// $request_host$ until this config is committed, and then the
		// zone's update sees the config.
		zone, err := zoneRef(ctx, tx, "zone", sc.Zone)
		if err != nil {
			return "", "", err
		}
		if err := stagingAllowed(zone); err != nil {
			return "", "", err
		}
		// Read FOR SHARE: the workspace cannot move to a server pool until
		// this config is committed, and then the workspace's update sees it.
		ws, err := tx.GetWorkspace(ctx, sc.Workspace, ForShare)
		if err != nil {
			return "", "", refError(err, Invalid, "workspace", "workspace", sc.Workspace)
		}
		if ws.ServerPool != nil {
			return "", "", fieldError(Invalid, "workspace",
				"workspace %q runs its sessions on the servers of pool %q: they are assignments to fixed servers, started by no container, so they cannot be staged",
				ws.Name, *ws.ServerPool)
		}
		sc.ZoneID, sc.WorkspaceID = zone.ID, ws.ID
		sc, err = tx.InsertStagingConfig(ctx, sc)
		return sc.ID, "", err
	})
	return sc, explain(err, fmt.Sprintf("a staging config for workspace %q in zone %q", in.Workspace.Value, in.Zone.Value))
}

// stagingAllowed refuses a zone whose domains are still $request_host$.
func stagingAllowed(z domain.Zone) error {
	if setting := z.StagingBlocker(); setting != "" {
		return fieldError(Invalid, "zone",
			"zone %q has %s %s; the %s default cannot be used for staged sessions, which are started before any request names a host: set the zone's allow_origin_domain and upstream_auth_address to the domain users reach sessions on",
			z.Name, setting, domain.RequestHost, domain.RequestHost)
	}
	return nil
}

// UpdateStagingConfig changes how many sessions are kept staged, for how
// long, and with which permissions; the provisioner reconciles at once.
func (a *App) UpdateStagingConfig(ctx context.Context, id string, in domain.StagingConfigUpdate) (domain.StagingConfig, error) {
	if err := checkID(id); err != nil {
		return domain.StagingConfig{}, err
	}
	if errs := in.Validate(); len(errs) > 0 {
		return domain.StagingConfig{}, invalid(errs)
	}
	var sc domain.StagingConfig
	err := a.change(ctx, KindStagingConfig, OpUpdated, id, func(tx Tx) (_, _ string, err error) {
		if sc, err = tx.GetStagingConfig(ctx, id, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no staging config with id %s", id)
		}
		zone, err := zoneRef(ctx, tx, "zone", sc.Zone)
		if err != nil {
			return "", "", err
		}
		if err := stagingAllowed(zone); err != nil {
			return "", "", err
		}
		in.Apply(&sc)
		sc, err = tx.UpdateStagingConfig(ctx, sc)
		return sc.ID, "", err
	})
	return sc, explain(err, "staging config "+id)
}

// DeleteStagingConfig marks the staging config deleted; when the
// provisioner hears of it, it destroys the config's staged sessions.
// Sessions already assigned keep running.
func (a *App) DeleteStagingConfig(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	err := a.change(ctx, KindStagingConfig, OpDeleted, id, func(tx Tx) (_, _ string, err error) {
		err = tx.SoftDeleteStagingConfig(ctx, id)
		return id, "", notFoundOr(err, "no staging config with id %s", id)
	})
	return explain(err, "staging config "+id)
}

// checkID refuses a path id that is not a UUID.
func checkID(id string) error { return checkUUID("id", id) }

// checkUUID refuses an id given in field (a path or query parameter) that
// is not a UUID.
func checkUUID(field, id string) error {
	if !domain.IsUUID(id) {
		return fieldError(Invalid, field, "%q is not a UUID", id)
	}
	return nil
}
