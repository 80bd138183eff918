-- AutoScale (issue 17): docker_agent pools that add and remove their own
-- agents. A VM provider makes machines that run a Docker Engine reached
-- over TLS; a DNS provider gives each machine's agent an A record; an
-- autoscale config keeps a pool's free capacity in one zone at its
-- standby, between min_agents and max_agents. The provisioner's autoscaler
-- decides for one config at a time (its row lock) and records each
-- machine as an agent from the moment it asks for it, so that a replica
-- that dies mid-way leaves a row another replica picks up, never a machine
-- nobody knows of.

-- +goose Up
CREATE TABLE vm_providers (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    type       text NOT NULL CHECK (type IN ('local_docker', 'digitalocean')),
    -- the type's settings, as the API shows them
    settings   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    -- the type's secrets (an API token): written, never shown
    secrets    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(secrets) = 'object'),
    -- the provider's certificate authority: it signs each machine's engine
    -- certificate and the client certificate the provisioners present
    tls_ca_cert     text NOT NULL,
    tls_ca_key      text NOT NULL,
    tls_client_cert text NOT NULL,
    tls_client_key  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dns_providers (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    type       text NOT NULL CHECK (type IN ('rfc2136')),
    settings   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    secrets    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(secrets) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE autoscale_configs (
    id                       uuid PRIMARY KEY,
    name                     text NOT NULL UNIQUE,
    pool_id                  uuid NOT NULL REFERENCES pools (id),
    zone_id                  uuid NOT NULL REFERENCES zones (id),
    enabled                  boolean NOT NULL DEFAULT true,
    aggressive_scaling       boolean NOT NULL DEFAULT false,
    downscale_backoff        interval NOT NULL DEFAULT '15 minutes' CHECK (downscale_backoff >= '0'),
    standby_cores            numeric(10, 3) NOT NULL DEFAULT 0 CHECK (standby_cores >= 0),
    standby_memory_mb        integer NOT NULL DEFAULT 0 CHECK (standby_memory_mb >= 0),
    standby_gpus             integer NOT NULL DEFAULT 0 CHECK (standby_gpus >= 0),
    agent_cores_override     numeric(10, 3) CHECK (agent_cores_override > 0),
    agent_memory_mb_override integer CHECK (agent_memory_mb_override > 0),
    min_agents               integer NOT NULL DEFAULT 0 CHECK (min_agents >= 0),
    max_agents               integer NOT NULL CHECK (max_agents >= 1 AND max_agents >= min_agents),
    vm_provider_id           uuid NOT NULL REFERENCES vm_providers (id),
    dns_provider_id          uuid REFERENCES dns_providers (id),
    -- the autoscaler's record: when it last added or removed an agent
    -- (the downscale backoff counts from it), what it last decided, and
    -- its last failure
    last_scale_at            timestamptz,
    last_decision            text NOT NULL DEFAULT '',
    last_decision_at         timestamptz,
    last_error               text NOT NULL DEFAULT '',
    last_error_at            timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pool_id, zone_id)
);

-- An agent the autoscaler made: its config and provider, the provider's id
-- of its machine, and where it is in its life. Agents entered by hand are
-- 'active' with no config. Placement and staging use only active agents.
ALTER TABLE agents
    ADD COLUMN gpus integer NOT NULL DEFAULT 0 CHECK (gpus >= 0),
    ADD COLUMN autoscale_config_id uuid REFERENCES autoscale_configs (id),
    ADD COLUMN vm_provider_id uuid REFERENCES vm_providers (id),
    ADD COLUMN machine_id text NOT NULL DEFAULT '',
    ADD COLUMN lifecycle text NOT NULL DEFAULT 'active'
        CHECK (lifecycle IN ('provisioning', 'active', 'draining', 'deleting', 'deleted')),
    ADD COLUMN lifecycle_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN lifecycle_error text NOT NULL DEFAULT '',
    -- the replica working on the agent's machine (making or deleting it)
    -- and until when; another takes the work over once the lease ran out
    ADD COLUMN work_owner text NOT NULL DEFAULT '',
    ADD COLUMN work_lease_until timestamptz,
    -- when a replica first took up the agent's current step: the boot
    -- timeout counts from it, not from the decision, so that agents
    -- waiting for a free worker do not use it up
    ADD COLUMN work_started_at timestamptz;
CREATE INDEX agents_autoscale_config_idx ON agents (autoscale_config_id) WHERE autoscale_config_id IS NOT NULL;

-- +goose Down
DROP INDEX agents_autoscale_config_idx;
ALTER TABLE agents
    DROP COLUMN work_started_at,
    DROP COLUMN work_lease_until,
    DROP COLUMN work_owner,
    DROP COLUMN lifecycle_error,
    DROP COLUMN lifecycle_at,
    DROP COLUMN lifecycle,
    DROP COLUMN machine_id,
    DROP COLUMN vm_provider_id,
    DROP COLUMN autoscale_config_id,
    DROP COLUMN gpus;
DROP TABLE autoscale_configs;
DROP TABLE dns_providers;
DROP TABLE vm_providers;
