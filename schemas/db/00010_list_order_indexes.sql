-- The API's lists are paginated by keyset (issue 14): a page is the rows
-- after the previous page's last sort key, in the list's order. These
-- indexes are that order for the two lists that grow without bound —
-- sessions (every session ever made: ended ones stay) and violations,
-- both newest first — so that each page, and each refresh of the admin
-- console's Sessions and Violations pages, reads its rows from an index
-- range instead of sorting the whole table.

-- +goose Up
CREATE INDEX sessions_list_idx ON sessions (created_at DESC, id DESC);
CREATE INDEX violations_list_idx ON violations (created_at DESC, id DESC);

-- +goose Down
DROP INDEX violations_list_idx;
DROP INDEX sessions_list_idx;
