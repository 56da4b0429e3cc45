-- Tenants: one container each. The row is the truth the workers converge towards.

CREATE TABLE tenants (
    id               uuid PRIMARY KEY,
    name             text NOT NULL,
    subdomain        text NOT NULL,
    project_id       uuid REFERENCES projects (id) ON DELETE SET NULL,
    node_id          uuid REFERENCES nodes (id) ON DELETE SET NULL,
    owner_user_id    uuid,
    vmid             integer,
    ip_address       text,
    ram_mb           integer NOT NULL CHECK (ram_mb >= 16),
    cores            integer NOT NULL CHECK (cores >= 1),
    ram_reserved     boolean NOT NULL DEFAULT false,
    status           text NOT NULL CHECK (status IN (
                        'provisioning', 'active', 'suspending', 'suspended', 'resuming',
                        'error', 'deleting', 'deleted')),
    step             text,
    last_error       text,
    error_step       text,
    failed_status    text,
    force_delete     boolean NOT NULL DEFAULT false,
    -- Who suspended it (admin, user, billing): only they (or an admin) may resume it.
    suspended_by     text,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    config_pending   boolean NOT NULL DEFAULT false,
    command_output   jsonb NOT NULL DEFAULT '[]',
    observed         jsonb NOT NULL DEFAULT '{}',
    observed_at      timestamptz,
    health           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz
);
-- A subdomain is free again once its tenant is deleted.
CREATE UNIQUE INDEX tenants_subdomain_live ON tenants (subdomain) WHERE status <> 'deleted';
-- Proxmox VMIDs are cluster-wide: never hand one VMID to two live tenants.
CREATE UNIQUE INDEX tenants_vmid_live ON tenants (vmid) WHERE status <> 'deleted' AND vmid IS NOT NULL;
CREATE INDEX tenants_node ON tenants (node_id) WHERE status <> 'deleted';
CREATE INDEX tenants_project ON tenants (project_id);
CREATE INDEX tenants_owner ON tenants (owner_user_id);
CREATE INDEX tenants_status_created ON tenants (status, created_at DESC, id);
CREATE INDEX tenants_created ON tenants (created_at DESC, id DESC);
-- The workers' claim query: tenants that need work and are not leased.
CREATE INDEX tenants_work ON tenants (next_attempt_at)
    WHERE status IN ('provisioning', 'suspending', 'resuming', 'deleting') OR config_pending;

-- Wake the workers as soon as a tenant needs work, instead of waiting for their next poll.
CREATE FUNCTION tenants_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('provisioning', 'suspending', 'resuming', 'deleting') OR NEW.config_pending THEN
        PERFORM pg_notify('controlplane_work', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tenants_notify_work
    AFTER INSERT OR UPDATE OF status, config_pending ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_notify_work();
