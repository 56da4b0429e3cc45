-- Remediation: a `repair` operation for a tenant whose container stopped or vanished
-- behind our back.
ALTER TABLE operations DROP CONSTRAINT operations_kind_check;
ALTER TABLE operations ADD CONSTRAINT operations_kind_check CHECK (kind IN (
    'snapshot_create', 'snapshot_delete', 'snapshot_rollback',
    'backup_create', 'backup_delete', 'backup_restore',
    'rebuild', 'resize', 'restart', 'move', 'repair'));

-- What the control plane does when a tenant's container is found stopped or gone: only
-- flag it in the tenant's health (the default), or repair it at once.
ALTER TABLE projects ADD COLUMN on_container_stopped text NOT NULL DEFAULT 'flag'
    CHECK (on_container_stopped IN ('flag', 'restart'));
