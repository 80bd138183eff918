-- Sessions carry what their user was promised (issue 10): the settings of
-- the workspace and of the user's effective group applied to the container,
-- who the session is for, when it ends, and which revision of its
-- configuration a staged container was made with, so that pools follow
-- configuration changes.

-- +goose Up

-- Web filter policies: a workspace's (fixed per workspace, so compatible
-- with staging) or a group's (incompatible with staging: rule 4). The
-- container receives the policy; enforcing it is the image's job.
CREATE TABLE web_filter_policies (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    default_allow   boolean NOT NULL DEFAULT true,
    allowed_domains text[] NOT NULL DEFAULT '{}',
    denied_domains  text[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Groups named their policy as free text before there were policies: each
-- name becomes a policy that allows everything (what nothing enforced
-- meant), so no group loses its setting.
INSERT INTO web_filter_policies (id, name)
    SELECT gen_random_uuid(), web_filter_policy FROM groups
    WHERE web_filter_policy <> '' GROUP BY web_filter_policy;
ALTER TABLE groups ADD COLUMN web_filter_policy_id uuid REFERENCES web_filter_policies (id);
UPDATE groups g SET web_filter_policy_id = p.id FROM web_filter_policies p WHERE p.name = g.web_filter_policy;
ALTER TABLE groups DROP COLUMN web_filter_policy;

-- Session lengths (durations; NULL = no limit). The best-priority group's
-- values are copied to each session when it is requested.
ALTER TABLE groups ADD COLUMN session_time_limit interval CHECK (session_time_limit > interval '0');
ALTER TABLE groups ADD COLUMN keepalive_expiration interval CHECK (keepalive_expiration > interval '0');

-- What a user brings into a session when their group says so.
ALTER TABLE users ADD COLUMN ssh_public_keys text[] NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}';

-- Workspaces: a server-pool workspace starts no container, so it needs no
-- image. home_directory is where a persistent profile is mounted and SSH
-- keys go. revision changes with every field that shapes its containers
-- (the trigger below), so staged containers of an older one are replaced.
ALTER TABLE workspaces ALTER COLUMN image SET DEFAULT '';
ALTER TABLE workspaces ADD COLUMN home_directory text NOT NULL DEFAULT '/home/kasm-user';
ALTER TABLE workspaces ADD COLUMN web_filter_policy_id uuid REFERENCES web_filter_policies (id);
ALTER TABLE workspaces ADD COLUMN revision bigint NOT NULL DEFAULT 1;

-- +goose StatementBegin
CREATE FUNCTION workspaces_revision() RETURNS trigger AS $$
BEGIN
    IF (NEW.image, NEW.cores, NEW.memory_mb, NEW.include_labels, NEW.exclude_labels,
        NEW.persistent_profile_path, NEW.volume_mappings, NEW.docker_exec_config,
        NEW.run_config, NEW.port, NEW.readiness_path, NEW.home_directory,
        NEW.web_filter_policy_id)
       IS DISTINCT FROM
       (OLD.image, OLD.cores, OLD.memory_mb, OLD.include_labels, OLD.exclude_labels,
        OLD.persistent_profile_path, OLD.volume_mappings, OLD.docker_exec_config,
        OLD.run_config, OLD.port, OLD.readiness_path, OLD.home_directory,
        OLD.web_filter_policy_id) THEN
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER workspaces_revision BEFORE UPDATE ON workspaces
    FOR EACH ROW EXECUTE FUNCTION workspaces_revision();

-- A policy's containers carry it (GREENROOM_WEB_FILTER: its name and
-- content), so editing it is a new revision of every workspace that uses it.
-- +goose StatementBegin
CREATE FUNCTION web_filter_policies_revision() RETURNS trigger AS $$
BEGIN
    IF (NEW.name, NEW.default_allow, NEW.allowed_domains, NEW.denied_domains)
       IS DISTINCT FROM (OLD.name, OLD.default_allow, OLD.allowed_domains, OLD.denied_domains) THEN
        UPDATE workspaces SET revision = revision + 1, updated_at = now()
            WHERE web_filter_policy_id = NEW.id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER web_filter_policies_revision AFTER UPDATE ON web_filter_policies
    FOR EACH ROW EXECUTE FUNCTION web_filter_policies_revision();

-- Defaults that match: a staging config written without allow_* grants
-- what a group written without them grants.
ALTER TABLE staging_configs
    ALTER COLUMN allow_audio SET DEFAULT true,
    ALTER COLUMN allow_clipboard_down SET DEFAULT true,
    ALTER COLUMN allow_clipboard_up SET DEFAULT true,
    ALTER COLUMN allow_downloads SET DEFAULT true,
    ALTER COLUMN allow_microphone SET DEFAULT true,
    ALTER COLUMN allow_uploads SET DEFAULT true,
    ALTER COLUMN allow_gamepad SET DEFAULT true;

-- Sessions:
-- on_demand_reason: why an on-demand session was not served staged.
-- revision: the configuration a container was made with (the workspace's
--   revision, and for a staged one its staging config's permissions and
--   its zone's domains); a staged session of another revision is replaced.
-- session_time_limit, keepalive_expiration: copied from the user's
--   effective group when requested; time_limit_at and keepalive_at are the
--   deadlines they give once the session runs, expires_at the earlier one.
-- first_launch_at: when the workspace's first_launch exec ran, so that it
--   runs once per session however often its event is delivered.
ALTER TABLE sessions
    ADD COLUMN on_demand_reason text NOT NULL DEFAULT '',
    ADD COLUMN revision text NOT NULL DEFAULT '',
    ADD COLUMN session_time_limit interval,
    ADD COLUMN keepalive_expiration interval,
    ADD COLUMN time_limit_at timestamptz,
    ADD COLUMN keepalive_at timestamptz,
    ADD COLUMN first_launch_at timestamptz;
-- Running sessions with a deadline, for the expiry service.
CREATE INDEX sessions_running_expiry_idx ON sessions (expires_at) WHERE status = 'running';

-- +goose Down
DROP INDEX sessions_running_expiry_idx;
ALTER TABLE sessions
    DROP COLUMN on_demand_reason, DROP COLUMN revision, DROP COLUMN session_time_limit,
    DROP COLUMN keepalive_expiration, DROP COLUMN time_limit_at, DROP COLUMN keepalive_at,
    DROP COLUMN first_launch_at;
ALTER TABLE staging_configs
    ALTER COLUMN allow_audio SET DEFAULT false,
    ALTER COLUMN allow_clipboard_down SET DEFAULT false,
    ALTER COLUMN allow_clipboard_up SET DEFAULT false,
    ALTER COLUMN allow_downloads SET DEFAULT false,
    ALTER COLUMN allow_microphone SET DEFAULT false,
    ALTER COLUMN allow_uploads SET DEFAULT false,
    ALTER COLUMN allow_gamepad SET DEFAULT false;
DROP TRIGGER web_filter_policies_revision ON web_filter_policies;
DROP FUNCTION web_filter_policies_revision();
DROP TRIGGER workspaces_revision ON workspaces;
DROP FUNCTION workspaces_revision();
ALTER TABLE workspaces DROP COLUMN revision, DROP COLUMN web_filter_policy_id, DROP COLUMN home_directory;
ALTER TABLE workspaces ALTER COLUMN image DROP DEFAULT;
ALTER TABLE users DROP COLUMN attributes, DROP COLUMN ssh_public_keys;
ALTER TABLE groups DROP COLUMN keepalive_expiration, DROP COLUMN session_time_limit;
ALTER TABLE groups ADD COLUMN web_filter_policy text NOT NULL DEFAULT '';
UPDATE groups g SET web_filter_policy = p.name FROM web_filter_policies p WHERE p.id = g.web_filter_policy_id;
ALTER TABLE groups DROP COLUMN web_filter_policy_id;
DROP TABLE web_filter_policies;
