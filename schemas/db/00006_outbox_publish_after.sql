-- Events published by their committer (issue 11): a service on the hot path
-- of a hand-off publishes the events its transaction wrote itself, right
-- after the commit, instead of waking a relay that would read them back.
-- Such a row carries publish_after: relays leave it to its committer until
-- then, and publish it after that (a committer that died or could not
-- publish), so nothing is lost between commit and publish. NULL: a relay
-- publishes it at once, as before.

-- +goose Up
ALTER TABLE outbox ADD COLUMN publish_after timestamptz;

-- Relays are woken only for the rows that are theirs at once.
DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH ROW WHEN (NEW.publish_after IS NULL) EXECUTE FUNCTION outbox_notify();

-- +goose Down
DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
ALTER TABLE outbox DROP COLUMN publish_after;
