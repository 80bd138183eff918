-- Containers are reached only through Greenroom (issue 13): a session's
-- port is published on its agent's private address, internal_address,
-- never on every interface. When it is empty the provisioner uses the
-- loopback interface for a local engine and the host of a tcp:// endpoint
-- when that is an IP address (domain.AgentInternalAddress).
--
-- public_host goes: it named a public address users opened session URLs
-- on, which is what must no longer exist. It is not copied into
-- internal_address, where a public address would publish the ports to the
-- world again; see the README's upgrading notes.

-- +goose Up
ALTER TABLE agents ADD COLUMN internal_address text NOT NULL DEFAULT '';
ALTER TABLE agents DROP COLUMN public_host;

-- +goose Down
ALTER TABLE agents ADD COLUMN public_host text NOT NULL DEFAULT '';
ALTER TABLE agents DROP COLUMN internal_address;
