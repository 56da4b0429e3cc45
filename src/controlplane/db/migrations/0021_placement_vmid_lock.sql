-- VMIDs are one namespace for the whole cluster and nodes' ranges usually overlap (the
-- same range on every node), but tenant_place (migrations 0015, 0016) only serialised
-- creators per node, by the node's row. Creators on different nodes then picked the same
-- lowest free VMID at once; all but one hit the unique index and picked again, and under a
-- steady burst on several nodes (the scale suite: 60 creates over 5 templates with deletes
-- freeing low VMIDs) one lost all five tries and the create was a 409 "no room ... or no
-- free VMID" with room and VMIDs to spare.
--
-- Now every placement takes one transaction-scoped advisory lock first, so the pick always
-- sees the previous placer's tenant (committed when the lock is released; plpgsql takes a
-- fresh snapshot per statement). The function runs as one autocommit statement, so the
-- lock is held for its few milliseconds, not across round trips. Taken before any node's
-- row, always in the same order, it cannot deadlock with another placer. The retry on the
-- unique index stays for VMIDs taken by other writers (moves).
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
    -- First, before any node's row: every placer takes the same lock in the same order.
    PERFORM pg_advisory_xact_lock(hashtext('controlplane.tenant_place'));
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
