package domain

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scopes of an API key: what its holder may do.
const (
	// ScopeSessions lets a key request sessions, list and read them, keep
	// them alive and end them: what an internal service that hands out
	// sessions needs, and nothing that changes the configuration.
	ScopeSessions = "sessions"
	// ScopeAdmin lets a key do everything the admin token does.
	ScopeAdmin = "admin"
)

// APIKeyScopes are the scopes a key may be given.
var APIKeyScopes = []string{ScopeSessions, ScopeAdmin}

const (
	// APIKeySecretPrefix begins every secret, so that one is told from
	// the admin token without a lookup, and recognised when it leaks.
	APIKeySecretPrefix = "grk_"
	// APIKeySecretBytes is how much randomness a secret carries.
	APIKeySecretBytes = 32
	// apiKeyShownLength is how much of a secret listings show (its prefix
	// and 8 characters, 48 bits): enough to tell keys apart, far too
	// little to guess the rest.
	apiKeyShownLength = len(APIKeySecretPrefix) + 8
	// APIKeyUseResolution is how stale a key's last_used_at may be: a use
	// is written only when the last one written is older, so that
	// authenticating a request is mostly one read.
	APIKeyUseResolution = time.Minute
)

// APIKey is a credential of an internal service, named by operators and
// limited to its scopes. Its secret is never part of an APIKey (only
// IssuedAPIKey, the answer that creates it, carries it), so that no other
// answer, log line or event can.
type APIKey struct {
	ID     string `db:"id" json:"id"`
	Name   string `db:"name" json:"name"`
	Scopes Labels `db:"scopes" json:"scopes"`
	// Prefix is the secret's first characters, to tell keys apart.
	Prefix     string     `db:"prefix" json:"prefix"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at" json:"last_used_at"`
	ExpiresAt  *time.Time `db:"expires_at" json:"expires_at"`
}

// IssuedAPIKey is a key as POST /api/v1/api-keys answers it: with its
// secret, shown this once.
type IssuedAPIKey struct {
	APIKey
	Secret string `json:"secret"`
}

// Grants reports whether the key may do what scope allows: admin allows
// everything.
func (k APIKey) Grants(scope string) bool {
	return slices.Contains(k.Scopes, ScopeAdmin) || slices.Contains(k.Scopes, scope)
}

// Expired reports whether the key no longer authenticates at now.
func (k APIKey) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
}

// UseWorthRecording reports whether a use at now should be written to
// last_used_at: when none is, or the one written is older than
// APIKeyUseResolution.
func (k APIKey) UseWorthRecording(now time.Time) bool {
	return k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= APIKeyUseResolution
}

// APIKeySecret formats random bytes (APIKeySecretBytes of them) as a
// secret: grk_ and their unpadded base64url.
func APIKeySecret(random []byte) string {
	return APIKeySecretPrefix + base64.RawURLEncoding.EncodeToString(random)
}

// IsAPIKeySecret reports whether token has the form of a secret, which is
// worth looking up.
func IsAPIKeySecret(token string) bool {
	return strings.HasPrefix(token, APIKeySecretPrefix) &&
		len(token) == len(APIKeySecretPrefix)+base64.RawURLEncoding.EncodedLen(APIKeySecretBytes)
}

// HashAPIKeySecret is what is stored of a secret, and looked up by: its
// SHA-256 (a secret is random enough that a fast hash hides it; see
// schemas/db/00009_api_keys.sql).
func HashAPIKeySecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// APIKeyPrefix is the part of secret that listings show.
func APIKeyPrefix(secret string) string {
	return secret[:min(apiKeyShownLength, len(secret))]
}

// APIKeyCreate is the body of POST /api/v1/api-keys. A key is never
// changed: to rotate one, create another and delete the old one.
type APIKeyCreate struct {
	Name   Optional[string]   `json:"name"`
	Scopes Optional[[]string] `json:"scopes"`
	// ExpiresAt is an RFC 3339 time; absent or null, the key does not
	// expire.
	ExpiresAt Optional[string] `json:"expires_at"`
}

// Validate lists the body's problems; an expiry must be after now.
func (in APIKeyCreate) Validate(now time.Time) FieldErrors {
	var errs FieldErrors
	checkName(&errs, "name", in.Name, required)
	if present(&errs, "scopes", in.Scopes, required) {
		if len(in.Scopes.Value) == 0 {
			errs.Add("scopes", "must list at least one scope (%s)", strings.Join(APIKeyScopes, ", "))
		}
		for i, s := range in.Scopes.Value {
			field := fmt.Sprintf("scopes[%d]", i)
			switch {
			case !slices.Contains(APIKeyScopes, s):
				errs.Add(field, "%q is not a scope: use %s", s, strings.Join(APIKeyScopes, " or "))
			case slices.Index(in.Scopes.Value, s) < i:
				errs.Add(field, "%q is listed twice", s)
			}
		}
	}
	if present(&errs, "expires_at", in.ExpiresAt, nullable) {
		if at, err := time.Parse(time.RFC3339, in.ExpiresAt.Value); err != nil {
			errs.Add("expires_at", "%q is not an RFC 3339 time such as 2030-01-31T12:00:00Z", in.ExpiresAt.Value)
		} else if !at.After(now) {
			errs.Add("expires_at", "must be in the future")
		}
	}
	return errs
}

// APIKey returns the key the body describes, without id or secret.
func (in APIKeyCreate) APIKey() APIKey {
	k := APIKey{Name: in.Name.Value, Scopes: Labels(in.Scopes.Value)}
	if in.ExpiresAt.Has() {
		at, err := time.Parse(time.RFC3339, in.ExpiresAt.Value)
		if err != nil {
			// Validate refused it before anything is applied.
			panic(fmt.Sprintf("applying an unchecked expires_at: %v", err))
		}
		// What a timestamptz column holds.
		at = at.UTC().Truncate(time.Microsecond)
		k.ExpiresAt = &at
	}
	return k
}
