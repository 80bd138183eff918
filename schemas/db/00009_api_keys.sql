-- Scoped API keys for internal services (issue 13): a service that only
-- requests, keeps alive and ends sessions holds a key with scope
-- `sessions` instead of the admin token. The config service issues a key's
-- secret once and keeps only its SHA-256 here, so that a copy of this
-- table authenticates nobody. A fast, unsalted hash is right for these
-- secrets, unlike for passwords: a secret is 32 random bytes (256 bits), so
-- no amount of guessing finds one from its hash, however fast the hash;
-- and being unsalted and deterministic, the hash is what a request's
-- secret is looked up by (the unique index), in one cheap step per request.
-- prefix is the secret's first characters, shown in listings so that
-- operators can tell keys apart; it gives away 48 of the 256 bits.

-- +goose Up
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    scopes       text[] NOT NULL
                 CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['sessions', 'admin']),
    secret_hash  bytea NOT NULL UNIQUE CHECK (octet_length(secret_hash) = 32),
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- when the key last authenticated a request, up to a minute late: it
    -- is written at most once a minute per key, so most requests only read.
    last_used_at timestamptz,
    -- NULL: the key does not expire.
    expires_at   timestamptz
);

-- +goose Down
DROP TABLE api_keys;
