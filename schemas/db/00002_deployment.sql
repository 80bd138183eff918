-- The identity of this deployment. Every container the provisioner makes
-- carries it as greenroom.deployment=<id>, so that deployments (or a
-- deployment and a test run) sharing a Docker engine never reap each
-- other's containers as orphans.

-- +goose Up
CREATE TABLE deployment (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO deployment DEFAULT VALUES;

-- +goose Down
DROP TABLE deployment;
