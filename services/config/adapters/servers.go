package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// serverSelect reads servers. Their `sessions` is 0 for now: the sessions
// table has no server column yet, sessions only run on Docker agents.
const serverSelect = `SELECT s.id, s.name, s.zone_id, z.name AS zone, s.pool_id, p.name AS pool,
	s.address, s.max_sessions, s.enabled, s.assigned_user, 0 AS sessions, s.created_at, s.updated_at
	FROM servers s
	JOIN zones z ON z.id = s.zone_id
	LEFT JOIN pools p ON p.id = s.pool_id`

// GetServer loads the server named name.
func GetServer(ctx context.Context, q Queryer, name string, lock Lock) (domain.Server, error) {
	var s domain.Server
	err := get(ctx, q, &s, fmt.Sprintf("server %q", name), serverSelect+` WHERE s.name = $1`+lock.clause("s"), name)
	return s, err
}

func getServerByID(ctx context.Context, q Queryer, id string) (domain.Server, error) {
	var s domain.Server
	err := get(ctx, q, &s, "server "+id, serverSelect+` WHERE s.id = $1`, id)
	return s, err
}

// ListServers loads every server, by name.
func ListServers(ctx context.Context, q Queryer) ([]domain.Server, error) {
	var ss []domain.Server
	if err := q.SelectContext(ctx, &ss, serverSelect+` ORDER BY s.name`); err != nil {
		return nil, fmt.Errorf("listing servers: %w", err)
	}
	return ss, nil
}

// InsertServer stores a new server (its zone and pool by id) and returns it
// as stored.
func InsertServer(ctx context.Context, q Queryer, s domain.Server) (domain.Server, error) {
	_, err := q.ExecContext(ctx, `INSERT INTO servers
		(id, name, zone_id, pool_id, address, max_sessions, enabled, assigned_user)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		s.ID, s.Name, s.ZoneID, s.PoolID, s.Address, s.MaxSessions, s.Enabled, s.AssignedUser)
	if err != nil {
		return domain.Server{}, fmt.Errorf("inserting server %q: %w", s.Name, err)
	}
	return getServerByID(ctx, q, s.ID)
}

// UpdateServer stores every field of s and returns it as stored.
func UpdateServer(ctx context.Context, q Queryer, s domain.Server) (domain.Server, error) {
	err := exec(ctx, q, fmt.Sprintf("updating server %q", s.Name), `UPDATE servers
		SET name = $2, zone_id = $3, pool_id = $4, address = $5, max_sessions = $6, enabled = $7,
			assigned_user = $8, updated_at = now()
		WHERE id = $1`,
		s.ID, s.Name, s.ZoneID, s.PoolID, s.Address, s.MaxSessions, s.Enabled, s.AssignedUser)
	if err != nil {
		return domain.Server{}, err
	}
	return getServerByID(ctx, q, s.ID)
}

// DeleteServer deletes the server with id.
func DeleteServer(ctx context.Context, q Queryer, id string) error {
	return exec(ctx, q, "deleting server", `DELETE FROM servers WHERE id = $1`, id)
}
