package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/app"
	"github.com/greenroom-dev/greenroom/services/config/domain"
)

const (
	poolColumns = `p.id, p.name, p.type, p.server_assignment, p.labels, p.created_at, p.updated_at`
	poolSelect  = `SELECT ` + poolColumns + ` FROM pools p`
)

// GetPool loads the pool named name.
func (q Tables) GetPool(ctx context.Context, name string, lock app.Lock) (domain.Pool, error) {
	var p domain.Pool
	err := get(ctx, q, &p, fmt.Sprintf("pool %q", name), poolSelect+` WHERE p.name = $1`+clause(lock, "p"), name)
	return p, err
}

// ListPools loads one page of the pools, by name.
func (q Tables) ListPools(ctx context.Context, p domain.Page) (domain.Paged[domain.Pool], error) {
	return listPage(ctx, q, "pools", poolSelect, nil, nil,
		byName("p.name", func(v domain.Pool) string { return v.Name }), p)
}

// InsertPool stores a new pool and returns it as stored.
func (q Tables) InsertPool(ctx context.Context, p domain.Pool) (domain.Pool, error) {
	var out domain.Pool
	err := q.GetContext(ctx, &out, `INSERT INTO pools AS p (id, name, type, server_assignment, labels)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+poolColumns,
		p.ID, p.Name, p.Type, p.ServerAssignment, p.Labels)
	if err != nil {
		return domain.Pool{}, fmt.Errorf("inserting pool %q: %w", p.Name, err)
	}
	return out, nil
}

// UpdatePool stores every field of p and returns it as stored.
func (q Tables) UpdatePool(ctx context.Context, p domain.Pool) (domain.Pool, error) {
	var out domain.Pool
	err := get(ctx, q, &out, fmt.Sprintf("pool %q", p.Name), `UPDATE pools AS p
		SET name = $2, type = $3, server_assignment = $4, labels = $5, updated_at = now()
		WHERE p.id = $1 RETURNING `+poolColumns,
		p.ID, p.Name, p.Type, p.ServerAssignment, p.Labels)
	return out, err
}

// CountPoolReferrers counts the agents, servers and workspaces that refer
// to the pool with id.
func (q Tables) CountPoolReferrers(ctx context.Context, id string) (int, error) {
	var n int
	err := q.GetContext(ctx, &n, `SELECT
		(SELECT count(*) FROM agents WHERE pool_id = $1) +
		(SELECT count(*) FROM servers WHERE pool_id = $1) +
		(SELECT count(*) FROM workspaces WHERE server_pool_id = $1)`, id)
	if err != nil {
		return 0, fmt.Errorf("counting what refers to pool %s: %w", id, err)
	}
	return n, nil
}

// DeletePool deletes the pool with id; a foreign-key violation means
// something still refers to it.
func (q Tables) DeletePool(ctx context.Context, id string) error {
	return exec(ctx, q, "deleting pool", `DELETE FROM pools WHERE id = $1`, id)
}
