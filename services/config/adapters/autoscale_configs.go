package adapters

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

const autoscaleConfigSelect = `SELECT ac.id, ac.name, ac.pool_id, p.name AS pool, ac.zone_id, z.name AS zone,
	ac.enabled, ac.aggressive_scaling, (EXTRACT(EPOCH FROM ac.downscale_backoff) * 1000000000)::bigint AS downscale_backoff,
	ac.standby_cores, ac.standby_memory_mb, ac.standby_gpus, ac.agent_cores_override, ac.agent_memory_mb_override,
	ac.min_agents, ac.max_agents, ac.vm_provider_id, vp.name AS vm_provider, ac.dns_provider_id, dp.name AS dns_provider,
	ac.last_scale_at, ac.last_decision, ac.last_decision_at, ac.last_error, ac.last_error_at, ac.created_at, ac.updated_at
	FROM autoscale_configs ac
	JOIN pools p ON p.id = ac.pool_id
	JOIN zones z ON z.id = ac.zone_id
	JOIN vm_providers vp ON vp.id = ac.vm_provider_id
	LEFT JOIN dns_providers dp ON dp.id = ac.dns_provider_id`

// GetAutoscaleConfig loads the autoscale config named name with its agents.
func (q Tables) GetAutoscaleConfig(ctx context.Context, name string, lock app.Lock) (domain.AutoscaleConfig, error) {
	var c domain.AutoscaleConfig
	err := get(ctx, q, &c, fmt.Sprintf("autoscale config %q", name), autoscaleConfigSelect+` WHERE ac.name = $1`+clause(lock, "ac"), name)
	if err != nil {
		return c, err
	}
	cs := []domain.AutoscaleConfig{c}
	err = q.setAutoscaledAgents(ctx, cs)
	return cs[0], err
}

// ListAutoscaleConfigs loads one page of the autoscale configs, by name,
// with their agents.
func (q Tables) ListAutoscaleConfigs(ctx context.Context, p domain.Page) (domain.Paged[domain.AutoscaleConfig], error) {
	cs, err := listPage(ctx, q, "autoscale configs", autoscaleConfigSelect, nil, nil,
		byName("ac.name", func(v domain.AutoscaleConfig) string { return v.Name }), p)
	if err != nil {
		return cs, err
	}
	return cs, q.setAutoscaledAgents(ctx, cs.Items)
}

// setAutoscaledAgents fills in the agents of each of cs.
func (q Tables) setAutoscaledAgents(ctx context.Context, cs []domain.AutoscaleConfig) error {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	var agents []domain.AutoscaledAgent
	err := q.SelectContext(ctx, &agents, `SELECT a.name, a.lifecycle, a.lifecycle_at, a.autoscale_config_id,
		(SELECT count(*) FROM sessions s WHERE s.agent_id = a.id AND s.status NOT IN ('destroyed', 'failed')) AS sessions
		FROM agents a WHERE a.autoscale_config_id = ANY($1) ORDER BY a.created_at, a.name`, pq.Array(ids))
	if err != nil {
		return fmt.Errorf("listing the agents of autoscale configs: %w", err)
	}
	for i := range cs {
		cs[i].Agents = []domain.AutoscaledAgent{}
		for _, a := range agents {
			if a.ConfigID == cs[i].ID {
				cs[i].Agents = append(cs[i].Agents, a)
			}
		}
	}
	return nil
}

// InsertAutoscaleConfig stores a new autoscale config (its references by
// id) and returns it as stored.
func (q Tables) InsertAutoscaleConfig(ctx context.Context, c domain.AutoscaleConfig) (domain.AutoscaleConfig, error) {
	_, err := q.ExecContext(ctx, `INSERT INTO autoscale_configs
		(id, name, pool_id, zone_id, enabled, aggressive_scaling, downscale_backoff, standby_cores, standby_memory_mb,
		 standby_gpus, agent_cores_override, agent_memory_mb_override, min_agents, max_agents, vm_provider_id, dns_provider_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7::interval, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		c.ID, c.Name, c.PoolID, c.ZoneID, c.Enabled, c.AggressiveScaling, intervalArg(&c.DownscaleBackoff), c.StandbyCores,
		c.StandbyMemoryMB, c.StandbyGPUs, c.AgentCoresOverride, c.AgentMemoryMBOverride, c.MinAgents, c.MaxAgents,
		c.VMProviderID, c.DNSProviderID)
	if err != nil {
		return domain.AutoscaleConfig{}, fmt.Errorf("inserting autoscale config %q: %w", c.Name, err)
	}
	return q.GetAutoscaleConfig(ctx, c.Name, app.NoLock)
}

// UpdateAutoscaleConfig stores every field of c an administrator sets and
// returns it as stored.
func (q Tables) UpdateAutoscaleConfig(ctx context.Context, c domain.AutoscaleConfig) (domain.AutoscaleConfig, error) {
	err := exec(ctx, q, fmt.Sprintf("updating autoscale config %q", c.Name), `UPDATE autoscale_configs
		SET name = $2, pool_id = $3, zone_id = $4, enabled = $5, aggressive_scaling = $6, downscale_backoff = $7::interval,
			standby_cores = $8, standby_memory_mb = $9, standby_gpus = $10, agent_cores_override = $11,
			agent_memory_mb_override = $12, min_agents = $13, max_agents = $14, vm_provider_id = $15,
			dns_provider_id = $16, updated_at = now()
		WHERE id = $1`,
		c.ID, c.Name, c.PoolID, c.ZoneID, c.Enabled, c.AggressiveScaling, intervalArg(&c.DownscaleBackoff), c.StandbyCores,
		c.StandbyMemoryMB, c.StandbyGPUs, c.AgentCoresOverride, c.AgentMemoryMBOverride, c.MinAgents, c.MaxAgents,
		c.VMProviderID, c.DNSProviderID)
	if err != nil {
		return domain.AutoscaleConfig{}, err
	}
	return q.GetAutoscaleConfig(ctx, c.Name, app.NoLock)
}

// DeleteAutoscaleConfig deletes the autoscale config with id; a
// foreign-key violation means agents it made are still there.
func (q Tables) DeleteAutoscaleConfig(ctx context.Context, id string) error {
	return exec(ctx, q, "deleting autoscale config", `DELETE FROM autoscale_configs WHERE id = $1`, id)
}
