package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// serverSelect reads servers with the number of their live sessions (the
// partial index sessions_server_live_idx serves the lateral join).
const serverSelect = `SELECT s.id, s.name, s.zone_id, z.name AS zone, s.pool_id, p.name AS pool,
	s.address, s.max_sessions, s.enabled, s.assigned_user, s.labels, load.sessions,
	s.created_at, s.updated_at
	FROM servers s
	JOIN zones z ON z.id = s.zone_id
	LEFT JOIN pools p ON p.id = s.pool_id
	CROSS JOIN LATERAL (
		SELECT count(*) AS sessions
		FROM sessions ss
		WHERE ss.server_id = s.id AND ss.status NOT IN ('destroyed', 'failed')
	) load`

// GetServer loads the server named name.
func (q Tables) GetServer(ctx context.Context, name string, lock app.Lock) (domain.Server, error) {
	var s domain.Server
	err := get(ctx, q, &s, fmt.Sprintf("server %q", name), serverSelect+` WHERE s.name = $1`+clause(lock, "s"), name)
	return s, err
}

func getServerByID(ctx context.Context, q Queryer, id string) (domain.Server, error) {
	var s domain.Server
	err := get(ctx, q, &s, "server "+id, serverSelect+` WHERE s.id = $1`, id)
	return s, err
}

// ListServers loads one page of the servers, by name.
func (q Tables) ListServers(ctx context.Context, p domain.Page) (domain.Paged[domain.Server], error) {
	return listPage(ctx, q, "servers", serverSelect, nil, nil,
		byName("s.name", func(v domain.Server) string { return v.Name }), p)
}

// ListServersInPools loads the servers of the pools with ids, by name.
func (q Tables) ListServersInPools(ctx context.Context, ids []string) ([]domain.Server, error) {
	return listInPools[domain.Server](ctx, q, "servers", serverSelect, "s.pool_id", ids, "s.name")
}

// CountAssignedServers counts the servers of the pool with id that are
// assigned to a user.
func (q Tables) CountAssignedServers(ctx context.Context, poolID string) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT count(*) FROM servers WHERE pool_id = $1 AND assigned_user IS NOT NULL`, poolID)
	if err != nil {
		return 0, fmt.Errorf("counting assigned servers of pool %s: %w", poolID, err)
	}
	return n, nil
}

// InsertServer stores a new server (its zone and pool by id) and returns it
// as stored.
func (q Tables) InsertServer(ctx context.Context, s domain.Server) (domain.Server, error) {
	_, err := q.ExecContext(ctx, `INSERT INTO servers
		(id, name, zone_id, pool_id, address, max_sessions, enabled, assigned_user, labels)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.ID, s.Name, s.ZoneID, s.PoolID, s.Address, s.MaxSessions, s.Enabled, s.AssignedUser, s.Labels)
	if err != nil {
		return domain.Server{}, fmt.Errorf("inserting server %q: %w", s.Name, err)
	}
	return getServerByID(ctx, q, s.ID)
}

// UpdateServer stores every field of s and returns it as stored.
func (q Tables) UpdateServer(ctx context.Context, s domain.Server) (domain.Server, error) {
	err := exec(ctx, q, fmt.Sprintf("updating server %q", s.Name), `UPDATE servers
		SET name = $2, zone_id = $3, pool_id = $4, address = $5, max_sessions = $6, enabled = $7,
			assigned_user = $8, labels = $9, updated_at = now()
		WHERE id = $1`,
		s.ID, s.Name, s.ZoneID, s.PoolID, s.Address, s.MaxSessions, s.Enabled, s.AssignedUser, s.Labels)
	if err != nil {
		return domain.Server{}, err
	}
	return getServerByID(ctx, q, s.ID)
}

// DeleteServer deletes the server with id; its ended sessions forget it
// (sessions.server_id is ON DELETE SET NULL), so the caller checks first
// that none is live.
func (q Tables) DeleteServer(ctx context.Context, id string) error {
	return exec(ctx, q, "deleting server", `DELETE FROM servers WHERE id = $1`, id)
}
