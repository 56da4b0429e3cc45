-- The hosting lifecycle: operations on a tenant's container (snapshots, backups, restore,
-- rebuild, resize, restart), the snapshots and backups they make, and backup schedules.

-- One row per requested operation. The workers claim queued or running ones with a lease,
-- like tenants; `step` says where a resumed attempt starts; `upids` keeps the Proxmox task
-- of each step, so a step that started a task waits for that task after a crash instead of
-- starting a second one.
CREATE TABLE operations (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN (
                        'snapshot_create', 'snapshot_delete', 'snapshot_rollback',
                        'backup_create', 'backup_delete', 'backup_restore',
                        'rebuild', 'resize', 'restart')),
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    params           jsonb NOT NULL DEFAULT '{}',
    -- What a step learnt and a later step (or a resumed attempt) needs: whether the
    -- container was running, the storage of its disk, the archive a backup wrote.
    state            jsonb NOT NULL DEFAULT '{}',
    step             text,
    error            text,
    upids            jsonb NOT NULL DEFAULT '{}',
    requested_by     text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- One operation in progress per tenant: a second is refused (the API answers 409 naming it).
CREATE UNIQUE INDEX operations_one_per_tenant ON operations (tenant_id)
    WHERE status IN ('queued', 'running');
CREATE INDEX operations_tenant ON operations (tenant_id, created_at DESC);
CREATE INDEX operations_work ON operations (next_attempt_at)
    WHERE status IN ('queued', 'running');

CREATE FUNCTION operations_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('queued', 'running') AND NEW.lease_owner IS NULL THEN
        PERFORM pg_notify('controlplane_operations', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER operations_notify_work AFTER INSERT OR UPDATE OF status, lease_owner ON operations
    FOR EACH ROW EXECUTE FUNCTION operations_notify_work();

-- The tenant names its operation in progress. Tenant transitions (suspend, resume, delete)
-- and a new operation both compare-and-swap on this column of the tenant's row, so the two
-- can never both start. `operation` is a summary (id, kind, status, step) that the tenant's
-- views and live events show.
ALTER TABLE tenants ADD COLUMN operation_id uuid REFERENCES operations (id) ON DELETE SET NULL;
ALTER TABLE tenants ADD COLUMN operation jsonb;
-- The root disk's size in GB, as last read from Proxmox (NULL until read).
ALTER TABLE tenants ADD COLUMN disk_gb integer CHECK (disk_gb >= 1);

-- Where a project's backups go and how long they outlive a deleted tenant (0: deleted
-- with it).
ALTER TABLE projects ADD COLUMN backup_storage text NOT NULL DEFAULT 'local';
ALTER TABLE projects ADD COLUMN keep_backups_days integer NOT NULL DEFAULT 0
    CHECK (keep_backups_days BETWEEN 0 AND 3650);

-- A snapshot's row is written before Proxmox is asked to make it, so a snapshot never
-- exists without one; `error` marks one whose operation failed (it may or may not exist on
-- Proxmox: deleting it is always safe).
CREATE TABLE snapshots (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    status       text NOT NULL CHECK (status IN ('creating', 'ready', 'deleting', 'error')),
    operation_id uuid REFERENCES operations (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

-- Likewise a backup's row exists before its vzdump starts; the archive is found again by
-- the row's id in its notes. `expires_at` is set when its tenant is deleted and the project
-- keeps backups for a while.
CREATE TABLE backups (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    node_id      uuid REFERENCES nodes (id) ON DELETE SET NULL,
    pve_node     text NOT NULL,
    storage      text NOT NULL,
    volid        text,
    size_bytes   bigint,
    scheduled    boolean NOT NULL DEFAULT false,
    status       text NOT NULL CHECK (status IN ('creating', 'ready', 'deleting', 'error')),
    operation_id uuid REFERENCES operations (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    expires_at   timestamptz
);
CREATE INDEX backups_tenant ON backups (tenant_id, created_at DESC);
CREATE INDEX backups_expiring ON backups (expires_at) WHERE expires_at IS NOT NULL;

-- A tenant's backup schedule. `next_run_at` is always the next occurrence after the last
-- claim, computed from the clock at claim time: a control plane that was down for days runs
-- a missed backup once at its next start, not once per missed day.
CREATE TABLE backup_schedules (
    tenant_id     uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    frequency     text NOT NULL CHECK (frequency IN ('daily', 'weekly')),
    at_time       time NOT NULL,
    weekday       integer CHECK (weekday BETWEEN 0 AND 6),
    keep_last     integer NOT NULL DEFAULT 1 CHECK (keep_last BETWEEN 0 AND 100),
    keep_daily    integer NOT NULL DEFAULT 0 CHECK (keep_daily BETWEEN 0 AND 100),
    keep_weekly   integer NOT NULL DEFAULT 0 CHECK (keep_weekly BETWEEN 0 AND 100),
    next_run_at   timestamptz NOT NULL,
    last_run_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((frequency = 'weekly') = (weekday IS NOT NULL)),
    CHECK (keep_last + keep_daily + keep_weekly >= 1)
);
CREATE INDEX backup_schedules_due ON backup_schedules (next_run_at);
