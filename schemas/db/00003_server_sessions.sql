-- Sessions on fixed servers (rule 8): a session of a workspace with a
-- server pool starts no container; it is an assignment to one server of
-- the pool, which counts against the server's max_sessions while it lives.
-- Servers get their own labels, as agents have; a member's effective labels
-- are its own plus its pool's.

-- +goose Up
ALTER TABLE servers ADD COLUMN labels text[] NOT NULL DEFAULT '{}';
-- A server can be deleted once it has no live sessions (the config API
-- refuses it before); its ended sessions then forget it.
ALTER TABLE sessions ADD COLUMN server_id uuid REFERENCES servers (id) ON DELETE SET NULL;
-- A session runs on an agent or on a server, never both.
ALTER TABLE sessions ADD CONSTRAINT sessions_agent_or_server
    CHECK (agent_id IS NULL OR server_id IS NULL);
-- Live sessions per server, for max_sessions.
CREATE INDEX sessions_server_live_idx
    ON sessions (server_id) WHERE status NOT IN ('destroyed', 'failed');

-- +goose Down
DROP INDEX sessions_server_live_idx;
ALTER TABLE sessions DROP CONSTRAINT sessions_agent_or_server;
ALTER TABLE sessions DROP COLUMN server_id;
ALTER TABLE servers DROP COLUMN labels;
