-- Users sign in (issue 13): a user's password is kept as a bcrypt hash
-- (NULL: the user cannot sign in), and each sign-in is a random token
-- held by the browser in an HttpOnly cookie and here only as its SHA-256,
-- so that a copy of this table signs nobody in. Any gateway replica
-- checks a token here; the config service's /api/v1/session-auth too.
-- A session's container is reached at upstream_url (its agent's internal
-- address and published port), by the gateway only; url is the address
-- users open, at the gateway.

-- +goose Up
ALTER TABLE users ADD COLUMN password_hash text;

CREATE TABLE sign_ins (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sign_ins_user_idx ON sign_ins (user_id);
CREATE INDEX sign_ins_expires_idx ON sign_ins (expires_at);

ALTER TABLE sessions ADD COLUMN upstream_url text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sessions DROP COLUMN upstream_url;
DROP TABLE sign_ins;
ALTER TABLE users DROP COLUMN password_hash;
