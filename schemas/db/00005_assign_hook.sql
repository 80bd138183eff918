-- The assign hook (issue 11): a workspace may hand a staged session to its
-- user by an HTTP POST to the container instead of a docker exec. Each
-- staged session's container gets a secret of its own at creation, which
-- the hook's request carries; it is kept here for the provisioner and is
-- never shown by the API nor put in an event.

-- +goose Up
-- {"path": "/.greenroom/assign", "timeout": "5s"}, or NULL for none.
ALTER TABLE workspaces ADD COLUMN assign_hook jsonb;
ALTER TABLE sessions ADD COLUMN assign_secret text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sessions DROP COLUMN assign_secret;
ALTER TABLE workspaces DROP COLUMN assign_hook;
