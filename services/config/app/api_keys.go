package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/greenroom-dev/greenroom/services/config/domain"
)

// ListAPIKeys returns one page (p) of every API key, without secrets.
func (a *App) ListAPIKeys(ctx context.Context, p domain.Page) (domain.Paged[domain.APIKey], error) {
	return paged(a.store.ListAPIKeys(ctx, p))
}

// GetAPIKey returns the API key named name, without its secret.
func (a *App) GetAPIKey(ctx context.Context, name string) (domain.APIKey, error) {
	k, err := a.store.GetAPIKey(ctx, name)
	return k, notFoundOr(err, "no API key named %q", name)
}

// CreateAPIKey issues a new API key: a random secret, answered this once
// and stored only as its hash. Its creation is announced (the key as its
// GET shows it, never the secret).
func (a *App) CreateAPIKey(ctx context.Context, in domain.APIKeyCreate) (domain.IssuedAPIKey, error) {
	if errs := in.Validate(time.Now()); len(errs) > 0 {
		return domain.IssuedAPIKey{}, invalid(errs)
	}
	random := make([]byte, domain.APIKeySecretBytes)
	_, _ = rand.Read(random) // it never fails (it crashes the program instead)
	secret := domain.APIKeySecret(random)
	k := in.APIKey()
	k.ID, k.Prefix = domain.NewID(), domain.APIKeyPrefix(secret)
	err := a.change(ctx, KindAPIKey, OpCreated, "", func(tx Tx) (_, _ string, err error) {
		k, err = tx.InsertAPIKey(ctx, k, domain.HashAPIKeySecret(secret))
		return k.ID, k.Name, err
	})
	if err != nil {
		return domain.IssuedAPIKey{}, explain(err, fmt.Sprintf("API key %q", in.Name.Value))
	}
	return domain.IssuedAPIKey{APIKey: k, Secret: secret}, nil
}

// DeleteAPIKey revokes the API key named name: the next request with its
// secret is refused, since every request looks its key up.
func (a *App) DeleteAPIKey(ctx context.Context, name string) error {
	err := a.change(ctx, KindAPIKey, OpDeleted, name, func(tx Tx) (_, _ string, err error) {
		k, err := tx.GetAPIKey(ctx, name)
		if err != nil {
			return "", "", notFoundOr(err, "no API key named %q", name)
		}
		return k.ID, k.Name, tx.DeleteAPIKey(ctx, k.ID)
	})
	return explain(err, fmt.Sprintf("API key %q", name))
}

// AuthenticateAPIKey returns the live API key whose secret is secret, and
// records its use (at most once per domain.APIKeyUseResolution). An
// unknown, deleted or expired key is Unauthenticated; what the key may do
// is the caller's to check (APIKey.Grants).
func (a *App) AuthenticateAPIKey(ctx context.Context, secret string) (domain.APIKey, error) {
	if !domain.IsAPIKeySecret(secret) {
		return domain.APIKey{}, &Error{Kind: Unauthenticated, Detail: "the bearer token is neither the admin token nor an API key"}
	}
	k, err := a.store.GetAPIKeyBySecretHash(ctx, domain.HashAPIKeySecret(secret))
	if errors.Is(err, ErrNotFound) {
		return domain.APIKey{}, &Error{Kind: Unauthenticated, Detail: "no API key has this secret (it may have been deleted)"}
	}
	if err != nil {
		return domain.APIKey{}, err
	}
	now := time.Now()
	if k.Expired(now) {
		return domain.APIKey{}, &Error{Kind: Unauthenticated, Detail: fmt.Sprintf("API key %q expired at %s",
			k.Name, k.ExpiresAt.Format(time.RFC3339))}
	}
	if k.UseWorthRecording(now) {
		if err := a.store.RecordAPIKeyUse(ctx, k.ID); err != nil {
			return domain.APIKey{}, err
		}
		k.LastUsedAt = &now
	}
	return k, nil
}
