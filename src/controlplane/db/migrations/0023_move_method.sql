-- How a move crosses to its target, and the tenant's downtime, on the operation itself:
-- `migrate` (a restart migration) or `backup_restore` (vzdump to a storage both nodes
-- share, the source destroyed, restored on the target with the same VMID) when the
-- container's disk cannot be migrated. Both are set once the move knows them.
ALTER TABLE operations ADD COLUMN method text
    CHECK (method IS NULL OR method IN ('migrate', 'backup_restore'));
ALTER TABLE operations ADD COLUMN downtime_s double precision;
