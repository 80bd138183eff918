-- Tamper evidence for the audit log (issue 16). The notary (libs/audit,
-- run by the config service) reads the GREENROOM stream in sequence order
-- and, every so often, records a checkpoint of the events it has not yet
-- covered: their stream sequences, one 8-byte digest per event (SHA-256 of
-- its subject, headers and payload, cut to 64 bits) and a hash chain over
-- those digests that continues the previous checkpoint's. The same
-- checkpoint is announced in the stream (greenroom.audit.checkpoint), so
-- each copy vouches for the other: `greenroom audit verify` recomputes the
-- digests of the stored events and names an event removed or altered
-- after it was checkpointed.

-- +goose Up
CREATE TABLE audit_checkpoints (
    id         bigserial PRIMARY KEY,
    -- the stream sequences covered, first_seq..last_seq; missing lists
    -- the sequences in that range the stream no longer had when the
    -- notary read it (deleted before it was checkpointed)
    first_seq  bigint NOT NULL,
    last_seq   bigint NOT NULL CHECK (last_seq >= first_seq),
    events     integer NOT NULL,
    missing    bigint[] NOT NULL DEFAULT '{}',
    -- when the server stored the first and last event covered (retention
    -- is told from removal by them), and when the stream was created (a
    -- recreated stream shows)
    first_time     timestamptz NOT NULL,
    last_time      timestamptz NOT NULL,
    stream_created timestamptz NOT NULL,
    -- 8 bytes per event, in stream order
    digests    bytea NOT NULL,
    -- hex SHA-256: prev_chain and the checkpoint's other fields, then each
    -- digest in turn
    prev_chain text NOT NULL,
    chain      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE audit_checkpoints;
