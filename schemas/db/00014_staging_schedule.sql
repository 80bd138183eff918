-- Scheduled desired sessions (issue 17): a staging config's schedule is
-- a timetable of entries, each {"cron", "timezone", "duration",
-- "desired_sessions"}, whose desired_sessions replaces the config's own
-- from each start the cron expression gives (read in the time zone) for
-- the duration. The config service validates it (libs/schedule: every
-- field, and no two runs overlapping over the next 366 days); the
-- provisioner's reconciler aims each pool at the effective number at the
-- database's clock and passes over it again at the next start or end.

-- +goose Up
ALTER TABLE staging_configs ADD COLUMN schedule jsonb NOT NULL DEFAULT '[]'
    CHECK (jsonb_typeof(schedule) = 'array');

-- +goose Down
ALTER TABLE staging_configs DROP COLUMN schedule;
