package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// agentSelect reads agents with the load of their live sessions (the
// partial index sessions_agent_live_idx serves the lateral join).
const agentSelect = `SELECT a.id, a.name, a.zone_id, z.name AS zone, a.pool_id, p.name AS pool,
	a.docker_endpoint, a.internal_address, a.cores, a.memory_mb, a.gpus, a.enabled, a.labels,
	load.sessions, a.cores - load.cores AS free_cores, a.memory_mb - load.memory_mb AS free_memory_mb,
	a.last_heartbeat_at, ac.name AS autoscale_config, a.machine_id, a.lifecycle, a.lifecycle_at, a.lifecycle_error,
	a.created_at, a.updated_at
	FROM agents a
	JOIN zones z ON z.id = a.zone_id
	LEFT JOIN pools p ON p.id = a.pool_id
	LEFT JOIN autoscale_configs ac ON ac.id = a.autoscale_config_id
	CROSS JOIN LATERAL (
		SELECT count(*) AS sessions, COALESCE(sum(s.cores), 0) AS cores, COALESCE(sum(s.memory_mb), 0) AS memory_mb
		FROM sessions s
		WHERE s.agent_id = a.id AND s.status NOT IN ('destroyed', 'failed')
	) load`

// GetAgent loads the agent named name.
func (q Tables) GetAgent(ctx context.Context, name string, lock app.Lock) (domain.Agent, error) {
	var a domain.Agent
	err := get(ctx, q, &a, fmt.Sprintf("agent %q", name), agentSelect+` WHERE a.name = $1`+clause(lock, "a"), name)
	return a, err
}

func getAgentByID(ctx context.Context, q Queryer, id string) (domain.Agent, error) {
	var a domain.Agent
	err := get(ctx, q, &a, "agent "+id, agentSelect+` WHERE a.id = $1`, id)
	return a, err
}

// ListAgents loads one page of the agents, by name.
func (q Tables) ListAgents(ctx context.Context, p domain.Page) (domain.Paged[domain.Agent], error) {
	return listPage(ctx, q, "agents", agentSelect, nil, nil,
		byName("a.name", func(v domain.Agent) string { return v.Name }), p)
}

// ListAgentsInPools loads the agents of the pools with ids, by name.
func (q Tables) ListAgentsInPools(ctx context.Context, ids []string) ([]domain.Agent, error) {
	return listInPools[domain.Agent](ctx, q, "agents", agentSelect, "a.pool_id", ids, "a.name")
}

// InsertAgent stores a new agent (its zone and pool by id) and returns it
// as stored.
func (q Tables) InsertAgent(ctx context.Context, a domain.Agent) (domain.Agent, error) {
	_, err := q.ExecContext(ctx, `INSERT INTO agents
		(id, name, zone_id, pool_id, docker_endpoint, internal_address, cores, memory_mb, gpus, enabled, labels)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ID, a.Name, a.ZoneID, a.PoolID, a.DockerEndpoint, a.InternalAddress, a.Cores, a.MemoryMB, a.GPUs, a.Enabled, a.Labels)
	if err != nil {
		return domain.Agent{}, fmt.Errorf("inserting agent %q: %w", a.Name, err)
	}
	return getAgentByID(ctx, q, a.ID)
}

// UpdateAgent stores every field of a and returns it as stored.
func (q Tables) UpdateAgent(ctx context.Context, a domain.Agent) (domain.Agent, error) {
	err := exec(ctx, q, fmt.Sprintf("updating agent %q", a.Name), `UPDATE agents
		SET name = $2, zone_id = $3, pool_id = $4, docker_endpoint = $5, internal_address = $6,
			cores = $7, memory_mb = $8, enabled = $9, labels = $10, gpus = $11, updated_at = now()
		WHERE id = $1`,
		a.ID, a.Name, a.ZoneID, a.PoolID, a.DockerEndpoint, a.InternalAddress, a.Cores, a.MemoryMB, a.Enabled, a.Labels, a.GPUs)
	if err != nil {
		return domain.Agent{}, err
	}
	return getAgentByID(ctx, q, a.ID)
}

// DeleteAgent deletes the agent with id; a foreign-key violation means
// sessions still refer to it.
func (q Tables) DeleteAgent(ctx context.Context, id string) error {
	return exec(ctx, q, "deleting agent", `DELETE FROM agents WHERE id = $1`, id)
}
