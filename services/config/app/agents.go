package app

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListAgents returns one page (p) of every agent with its load.
func (a *App) ListAgents(ctx context.Context, p domain.Page) (domain.Paged[domain.Agent], error) {
	return paged(a.store.ListAgents(ctx, p))
}

// GetAgent returns the agent named name.
func (a *App) GetAgent(ctx context.Context, name string) (domain.Agent, error) {
	ag, err := a.store.GetAgent(ctx, name, NoLock)
	return ag, notFoundOr(err, "no agent named %q", name)
}

// CreateAgent registers a Docker agent in a zone and, optionally, a
// docker_agent pool.
func (a *App) CreateAgent(ctx context.Context, in domain.AgentCreate) (domain.Agent, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Agent{}, invalid(errs)
	}
	ag := in.Agent()
	if errs := ag.CheckAddress(); len(errs) > 0 {
		return domain.Agent{}, invalid(errs)
	}
	ag.ID = domain.NewID()
	err := a.change(ctx, KindAgent, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		if err := a.resolveAgentRefs(ctx, tx, &ag, true, true); err != nil {
			return "", "", err
		}
		ag, err = tx.InsertAgent(ctx, ag)
		return ag.ID, ag.Name, err
	})
	return ag, explain(err, fmt.Sprintf("agent %q", in.Name.Value))
}

// UpdateAgent changes the agent named name.
func (a *App) UpdateAgent(ctx context.Context, name string, in domain.AgentUpdate) (domain.Agent, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Agent{}, invalid(errs)
	}
	var ag domain.Agent
	err := a.change(ctx, KindAgent, OpUpdated, name, func(tx Tx) (_, _ string, err error) {
		if ag, err = tx.GetAgent(ctx, name, ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no agent named %q", name)
		}
		if err := autoscaledAgentChange(ag, in); err != nil {
			return "", "", err
		}
		in.Apply(&ag)
		if errs := ag.CheckAddress(); len(errs) > 0 {
			return "", "", invalid(errs)
		}
		if err := a.resolveAgentRefs(ctx, tx, &ag, in.Zone.Set, in.Pool.Set); err != nil {
			return "", "", err
		}
		ag, err = tx.UpdateAgent(ctx, ag)
		return ag.ID, ag.Name, err
	})
	return ag, explain(err, fmt.Sprintf("agent %q", in.Name.Or(name)))
}

// resolveAgentRefs sets the ids of the zone and pool the body named.
func (a *App) resolveAgentRefs(ctx context.Context, tx Tx, ag *domain.Agent, zone, pool bool) error {
	if zone {
		z, err := zoneRef(ctx, tx, "zone", ag.Zone)
		if err != nil {
			return err
		}
		ag.ZoneID = z.ID
	}
	if pool {
		p, err := poolRef(ctx, tx, "pool", ag.Pool, domain.PoolDockerAgent)
		if err != nil {
			return err
		}
		ag.PoolID = poolID(p)
	}
	return nil
}

// DeleteAgent deletes the agent named name, unless sessions refer to it.
func (a *App) DeleteAgent(ctx context.Context, name string) error {
	err := a.change(ctx, KindAgent, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		ag, err := tx.GetAgent(ctx, name, ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no agent named %q", name)
		}
		if ag.AutoscaleConfig != nil {
			return "", "", conflict("agent %q was made by autoscale config %q, which deletes it with its machine once it has drained; lower that config's min_agents or standby instead", ag.Name, *ag.AutoscaleConfig)
		}
		return ag.ID, ag.Name, tx.DeleteAgent(ctx, ag.ID)
	})
	return explain(err, fmt.Sprintf("agent %q", name))
}

// autoscaledAgentChange refuses (409) a change to what an autoscaled
// agent's machine is: its name (its DNS record and machine carry it), zone,
// pool and endpoint are its autoscale config's. Enabled, labels and the
// like may change.
func autoscaledAgentChange(ag domain.Agent, in domain.AgentUpdate) error {
	if ag.AutoscaleConfig == nil {
		return nil
	}
	for _, f := range []struct {
		field   string
		changed bool
	}{
		{"name", in.Name.Has() && in.Name.Value != ag.Name},
		{"zone", in.Zone.Has() && in.Zone.Value != ag.Zone},
		{"pool", in.Pool.Set && (in.Pool.Null || ag.Pool == nil || in.Pool.Value != *ag.Pool)},
		{"docker_endpoint", in.DockerEndpoint.Has() && in.DockerEndpoint.Value != ag.DockerEndpoint},
		{"internal_address", in.InternalAddress.Has() && in.InternalAddress.Value != ag.InternalAddress},
	} {
		if f.changed {
			return fieldError(Conflict, f.field, "agent %q was made by autoscale config %q for its machine; its %s cannot change", ag.Name, *ag.AutoscaleConfig, f.field)
		}
	}
	return nil
}
