-- NATS permissions per service (issue 15): each service may publish only
-- the subjects of its own events, so a relay publishes only the outbox
-- rows its own service wrote, found by the events' CloudEvents source
-- ("greenroom/assigner"), and a requesting service hears the outcomes of
-- its own requests only: a session keeps the requester its request came
-- from (the last token of greenroom.session.requested.<requester>; empty
-- for the unqualified subject), and its greenroom.session.ready/failed go
-- to greenroom.session.ready.<requester> / .failed.<requester>.

-- +goose Up
ALTER TABLE outbox ADD COLUMN source text GENERATED ALWAYS AS (COALESCE(payload->>'source', '')) STORED;
CREATE INDEX outbox_source_seq_idx ON outbox (source, seq);
ALTER TABLE sessions ADD COLUMN requester text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sessions DROP COLUMN requester;
DROP INDEX outbox_source_seq_idx;
ALTER TABLE outbox DROP COLUMN source;
