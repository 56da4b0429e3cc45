-- Moving tenants between nodes: a `move` operation, and node drains that run moves a
-- bounded number at a time.

ALTER TABLE operations DROP CONSTRAINT operations_kind_check;
ALTER TABLE operations ADD CONSTRAINT operations_kind_check CHECK (kind IN (
    'snapshot_create', 'snapshot_delete', 'snapshot_rollback',
    'backup_create', 'backup_delete', 'backup_restore',
    'rebuild', 'resize', 'restart', 'move'));

-- A drain of one node: the drain runner starts moves of its tenants, at most
-- `max_parallel` at once, until none is left; cancelling stops new moves (the ones in
-- flight finish). One running drain per node; placement skips a node being drained.
CREATE TABLE drains (
    id           uuid PRIMARY KEY,
    node_id      uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'cancelled', 'done')),
    max_parallel integer NOT NULL DEFAULT 2 CHECK (max_parallel BETWEEN 1 AND 20),
    requested_by text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE UNIQUE INDEX drains_one_running ON drains (node_id) WHERE status = 'running';

ALTER TABLE operations ADD COLUMN drain_id uuid REFERENCES drains (id) ON DELETE SET NULL;
CREATE INDEX operations_drain ON operations (drain_id) WHERE drain_id IS NOT NULL;

-- Placement (migration 0015's tenant_place) now skips nodes being drained.
CREATE OR REPLACE FUNCTION tenant_place(
    p_id uuid,
    p_name text,
    p_subdomain text,
    p_project_id uuid,
    p_owner_user_id uuid,
    p_node_id uuid,
    p_template integer,
    p_ram_mb integer,
    p_cores integer
) RETURNS SETOF tenants
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    cand uuid;
    node record;
    pick integer;
    placed tenants;
    violated text;
BEGIN
    FOR cand IN
        SELECT n.id FROM nodes n
        WHERE CASE WHEN p_node_id IS NULL
                   THEN n.status = 'online' AND p_template = ANY (n.templates)
                        AND n.allocated_ram_mb + p_ram_mb <= node_ram_capacity_mb(n.total_ram_mb)
                        -- A node being drained takes no new tenants (an operator's explicit
                        -- node_id still may).
                        AND NOT EXISTS (SELECT 1 FROM drains d
                                        WHERE d.node_id = n.id AND d.status = 'running')
                   ELSE n.id = p_node_id END
        ORDER BY node_ram_capacity_mb(n.total_ram_mb) - n.allocated_ram_mb DESC, n.name
    LOOP
        UPDATE nodes n
        SET allocated_ram_mb = n.allocated_ram_mb + p_ram_mb, updated_at = n.updated_at
        WHERE n.id = cand
          AND n.status = 'online'
          AND n.allocated_ram_mb + p_ram_mb <= node_ram_capacity_mb(n.total_ram_mb)
        RETURNING n.id, n.vmid_range_start, n.vmid_range_end INTO node;
        CONTINUE WHEN NOT FOUND;
        FOR attempt IN 1..5 LOOP
            SELECT min(c) INTO pick
            FROM (
                SELECT node.vmid_range_start AS c
                UNION ALL
                SELECT t.vmid + 1 FROM tenants t
                WHERE t.status <> 'deleted'
                  AND t.vmid BETWEEN node.vmid_range_start AND node.vmid_range_end
            ) free
            WHERE c BETWEEN node.vmid_range_start AND node.vmid_range_end
              AND NOT EXISTS (
                  SELECT 1 FROM tenants t WHERE t.vmid = free.c AND t.status <> 'deleted');
            EXIT WHEN pick IS NULL;
            BEGIN
                INSERT INTO tenants (id, name, subdomain, project_id, node_id, owner_user_id,
                                     vmid, ram_mb, cores, ram_reserved, status, step)
                VALUES (p_id, p_name, p_subdomain, p_project_id, node.id, p_owner_user_id,
                        pick, p_ram_mb, p_cores, true, 'provisioning', 'clone')
                RETURNING * INTO placed;
                RETURN NEXT placed;
                RETURN;
            EXCEPTION WHEN unique_violation THEN
                GET STACKED DIAGNOSTICS violated = CONSTRAINT_NAME;
                IF violated IS DISTINCT FROM 'tenants_vmid_live' THEN
                    RAISE;
                END IF;
            END;
        END LOOP;
        -- No free VMID on this node: give its reservation back, try the next one.
        UPDATE nodes n
        SET allocated_ram_mb = n.allocated_ram_mb - p_ram_mb, updated_at = n.updated_at
        WHERE n.id = node.id;
    END LOOP;
    RETURN;
END
$$;
