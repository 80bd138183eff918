package app

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/greenroom-dev/greenroom/services/config/adapters"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListAgents returns every agent with its load.
func (a *App) ListAgents(ctx context.Context) ([]domain.Agent, error) {
	return adapters.ListAgents(ctx, a.db)
}

// GetAgent returns the agent named name.
func (a *App) GetAgent(ctx context.Context, name string) (domain.Agent, error) {
	ag, err := adapters.GetAgent(ctx, a.db, name, adapters.NoLock)
	return ag, notFoundOr(err, "no agent named %q", name)
}

// CreateAgent registers a Docker agent in a zone and, optionally, a
// docker_agent pool.
func (a *App) CreateAgent(ctx context.Context, in domain.AgentCreate) (domain.Agent, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return domain.Agent{}, invalid(errs)
	}
	ag := in.Agent()
	ag.ID = domain.NewID()
	err := a.change(ctx, KindAgent, OpCreated, func(tx *sqlx.Tx) (_, _ string, err error) {
		if err := a.resolveAgentRefs(ctx, tx, &ag, true, true); err != nil {
			return "", "", err
		}
		ag, err = adapters.InsertAgent(ctx, tx, ag)
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
	err := a.change(ctx, KindAgent, OpUpdated, func(tx *sqlx.Tx) (_, _ string, err error) {
		if ag, err = adapters.GetAgent(ctx, tx, name, adapters.ForUpdate); err != nil {
			return "", "", notFoundOr(err, "no agent named %q", name)
		}
		in.Apply(&ag)
		if err := a.resolveAgentRefs(ctx, tx, &ag, in.Zone.Set, in.Pool.Set); err != nil {
			return "", "", err
		}
		ag, err = adapters.UpdateAgent(ctx, tx, ag)
		return ag.ID, ag.Name, err
	})
	return ag, explain(err, fmt.Sprintf("agent %q", in.Name.Or(name)))
}

// resolveAgentRefs sets the ids of the zone and pool the body named.
func (a *App) resolveAgentRefs(ctx context.Context, tx *sqlx.Tx, ag *domain.Agent, zone, pool bool) error {
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
	err := a.change(ctx, KindAgent, OpDeleted, func(tx *sqlx.Tx) (_, _ string, err error) {
		ag, err := adapters.GetAgent(ctx, tx, name, adapters.ForUpdate)
		if err != nil {
			return "", "", notFoundOr(err, "no agent named %q", name)
		}
		return ag.ID, ag.Name, adapters.DeleteAgent(ctx, tx, ag.ID)
	})
	return explain(err, fmt.Sprintf("agent %q", name))
}
