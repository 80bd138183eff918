package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/libs/schedule"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/poolstate"
)

var _ poolstate.Reader = (*Store)(nil)

// StagingPools returns every live staging config with its staged and
// provisioning sessions (read through sessions_staged_claim_idx and
// sessions_pending_idx), by zone and workspace. Desired is what the pool
// aims for now: its schedule's while a run of it is in effect, on the
// database's clock, as the reconciler reads it.
func (s *Store) StagingPools(ctx context.Context) ([]poolstate.StagingPool, error) {
	var rows []struct {
		poolstate.StagingPool
		Schedule schedule.Schedule `db:"schedule"`
		Now      time.Time         `db:"now"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT z.name AS zone, w.name AS workspace, c.desired_sessions,
			c.schedule, now() AS now, c.status, c.last_error,
			count(s.id) FILTER (WHERE s.status = 'staged') AS staged,
			count(s.id) FILTER (WHERE s.status = 'provisioning') AS provisioning
		FROM staging_configs c
		JOIN zones z ON z.id = c.zone_id
		JOIN workspaces w ON w.id = c.workspace_id
		LEFT JOIN sessions s ON s.staging_config_id = c.id AND s.status IN ('staged', 'provisioning')
		WHERE c.deleted_at IS NULL
		GROUP BY c.id, z.name, w.name
		ORDER BY z.name, w.name`)
	if err != nil {
		return nil, fmt.Errorf("reading the staging pools' state: %w", err)
	}
	pools := make([]poolstate.StagingPool, len(rows))
	for i, r := range rows {
		pools[i] = r.StagingPool
		pools[i].Desired, _ = schedule.Effective(r.Schedule, r.Desired, r.Now)
	}
	return pools, nil
}

// Pools returns each pool's members and free capacity by zone: agents
// (with the cores and memory their live sessions reserve, as placement
// counts them) and servers (with their live sessions against
// max_sessions); then the pools that have no member at all.
func (s *Store) Pools(ctx context.Context) ([]poolstate.Pool, error) {
	var pools []poolstate.Pool
	err := s.db.SelectContext(ctx, &pools, `SELECT COALESCE(p.name, '') AS pool, 'docker_agent' AS type, z.name AS zone,
			count(*) FILTER (WHERE a.enabled AND a.lifecycle = 'active') AS members,
			count(*) FILTER (WHERE NOT a.enabled) AS disabled,
			COALESCE(sum(load.sessions), 0) AS sessions,
			COALESCE(sum(a.cores) FILTER (WHERE a.enabled AND a.lifecycle = 'active'), 0)::float8 AS cores,
			COALESCE(sum(a.cores - load.cores) FILTER (WHERE a.enabled AND a.lifecycle = 'active'), 0)::float8 AS free_cores,
			COALESCE(sum(a.memory_mb) FILTER (WHERE a.enabled AND a.lifecycle = 'active'), 0) AS memory_mb,
			COALESCE(sum(a.memory_mb - load.memory_mb) FILTER (WHERE a.enabled AND a.lifecycle = 'active'), 0) AS free_memory_mb,
			0 AS slots, 0 AS free_slots
		FROM agents a
		JOIN zones z ON z.id = a.zone_id
		LEFT JOIN pools p ON p.id = a.pool_id
		CROSS JOIN LATERAL (
			SELECT count(*) AS sessions, COALESCE(sum(s.cores), 0) AS cores, COALESCE(sum(s.memory_mb), 0) AS memory_mb
			FROM sessions s WHERE s.agent_id = a.id AND s.status NOT IN ('destroyed', 'failed')
		) load
		WHERE a.lifecycle <> 'deleted'
		GROUP BY p.name, z.name
	UNION ALL
		SELECT p.name AS pool, 'server' AS type, z.name AS zone,
			count(*) FILTER (WHERE v.enabled) AS members,
			count(*) FILTER (WHERE NOT v.enabled) AS disabled,
			COALESCE(sum(load.sessions), 0) AS sessions,
			0, 0, 0, 0,
			COALESCE(sum(v.max_sessions) FILTER (WHERE v.enabled), 0) AS slots,
			COALESCE(sum(v.max_sessions - load.sessions) FILTER (WHERE v.enabled), 0) AS free_slots
		FROM servers v
		JOIN zones z ON z.id = v.zone_id
		JOIN pools p ON p.id = v.pool_id
		CROSS JOIN LATERAL (
			SELECT count(*) AS sessions FROM sessions s WHERE s.server_id = v.id AND s.status NOT IN ('destroyed', 'failed')
		) load
		GROUP BY p.name, z.name
	UNION ALL
		SELECT p.name AS pool, p.type, '' AS zone, 0, 0, 0, 0, 0, 0, 0, 0, 0
		FROM pools p
		WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.pool_id = p.id AND a.lifecycle <> 'deleted')
		  AND NOT EXISTS (SELECT 1 FROM servers v WHERE v.pool_id = p.id)
	ORDER BY 1, 3`)
	if err != nil {
		return nil, fmt.Errorf("reading the pools' state: %w", err)
	}
	return pools, nil
}
