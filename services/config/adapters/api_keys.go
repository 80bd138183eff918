package adapters

import (
	"context"
	"fmt"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// apiKeyColumns are every column but secret_hash, which only ever goes in
// (and is matched in WHERE), never out.
const (
	apiKeyColumns = `id, name, scopes, prefix, created_at, last_used_at, expires_at`
	apiKeySelect  = `SELECT ` + apiKeyColumns + ` FROM api_keys`
)

// GetAPIKey loads the API key named name.
func (q Tables) GetAPIKey(ctx context.Context, name string) (domain.APIKey, error) {
	var k domain.APIKey
	err := get(ctx, q, &k, fmt.Sprintf("API key %q", name), apiKeySelect+` WHERE name = $1`, name)
	return k, err
}

// GetAPIKeyBySecretHash loads the API key whose secret has this hash.
func (q Tables) GetAPIKeyBySecretHash(ctx context.Context, secretHash []byte) (domain.APIKey, error) {
	var k domain.APIKey
	err := get(ctx, q, &k, "API key by secret", apiKeySelect+` WHERE secret_hash = $1`, secretHash)
	return k, err
}

// ListAPIKeys loads one page of the API keys, by name.
func (q Tables) ListAPIKeys(ctx context.Context, p domain.Page) (domain.Paged[domain.APIKey], error) {
	return listPage(ctx, q, "API keys", apiKeySelect, nil, nil,
		byName("name", func(v domain.APIKey) string { return v.Name }), p)
}

// InsertAPIKey stores a new API key with the hash of its secret and
// returns it as stored.
func (q Tables) InsertAPIKey(ctx context.Context, k domain.APIKey, secretHash []byte) (domain.APIKey, error) {
	var out domain.APIKey
	err := q.GetContext(ctx, &out, `INSERT INTO api_keys (id, name, scopes, secret_hash, prefix, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+apiKeyColumns,
		k.ID, k.Name, k.Scopes, secretHash, k.Prefix, k.ExpiresAt)
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("inserting API key %q: %w", k.Name, err)
	}
	return out, nil
}

// RecordAPIKeyUse sets the last use of the API key with id to now.
func (q Tables) RecordAPIKeyUse(ctx context.Context, id string) error {
	if _, err := q.ExecContext(ctx, `UPDATE api_keys SET last_used_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("recording a use of API key %s: %w", id, err)
	}
	return nil
}

// DeleteAPIKey deletes the API key with id.
func (q Tables) DeleteAPIKey(ctx context.Context, id string) error {
	return exec(ctx, q, "deleting API key", `DELETE FROM api_keys WHERE id = $1`, id)
}
