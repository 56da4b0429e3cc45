-- The warm pool: a project may keep `warm_pool_size` spare containers per node, cloned
-- from its template, configured and stopped, so a create skips the clone (the slowest
-- step by far: 20 s on a real cluster against 2 s for a start).
--
-- A spare is a row before it is a container (its VMID is chosen and stored before the
-- clone, like a tenant's), so a refiller killed at any point leaves a row that the next
-- one resumes (status `cloning`, its lease run out) or cleans (`retiring`). Its container
-- carries the tag `cp-spare` and `controlplane spare <id>` in its description, never the
-- tenants' tag, so no tenant list and no orphan scan counts it.
--
-- RAM: a spare is a stopped container and reserves no RAM; it counts 0 in the ledger
-- (nodes.allocated_ram_mb is still exactly the sum of live tenants' ram_mb). A refill only
-- happens on a node where one more tenant of the project's size fits, and taking a spare
-- reserves the tenant's RAM in the same statement as any other placement, with the same
-- check, so a spare never lets a node go past its capacity.
ALTER TABLE projects ADD COLUMN warm_pool_size integer NOT NULL DEFAULT 0
    CONSTRAINT projects_warm_pool_size_range CHECK (warm_pool_size BETWEEN 0 AND 20);

CREATE TABLE spares (
    id               uuid PRIMARY KEY,
    -- A deleted project's spares stay (project NULL) until the refiller destroys them.
    project_id       uuid REFERENCES projects (id) ON DELETE SET NULL,
    node_id          uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    template_vmid    integer NOT NULL,
    vmid             integer NOT NULL,
    -- cloning: being built (clone, configure, stopped); ready: may be taken;
    -- retiring: being destroyed (template changed, pool shrunk, project gone).
    status           text NOT NULL DEFAULT 'cloning'
        CONSTRAINT spares_status_check CHECK (status IN ('cloning', 'ready', 'retiring')),
    step             text,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    ready_at         timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX spares_vmid_key ON spares (vmid);
CREATE INDEX spares_take ON spares (node_id, project_id, template_vmid) WHERE status = 'ready';
CREATE INDEX spares_due ON spares (next_attempt_at) WHERE status <> 'ready';

-- The spare a tenant was made from (its row is deleted when taken; kept for the
-- provisioner, which recognises the spare's container by it, and for the record).
ALTER TABLE tenants ADD COLUMN spare_id uuid;
CREATE UNIQUE INDEX tenants_spare_id_key ON tenants (spare_id) WHERE spare_id IS NOT NULL;

-- The lowest VMID in [lo, hi] that no live tenant and no spare holds, skipping `avoid`.
-- Callers hold the placement lock (below), so two pickers never see the same answer;
-- VOLATILE, so it reads with a snapshot taken after that lock, never the caller's older one.
CREATE FUNCTION placement_free_vmid(lo integer, hi integer, avoid integer[])
RETURNS integer LANGUAGE sql VOLATILE AS $$
    SELECT min(c)
    FROM (
        SELECT lo AS c
        UNION ALL
        SELECT t.vmid + 1 FROM tenants t WHERE t.status <> 'deleted' AND t.vmid BETWEEN lo AND hi
        UNION ALL
        SELECT s.vmid + 1 FROM spares s WHERE s.vmid BETWEEN lo AND hi
        UNION ALL
        SELECT a + 1 FROM unnest(avoid) a WHERE a BETWEEN lo AND hi
    ) free
    WHERE c BETWEEN lo AND hi
      AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.vmid = free.c AND t.status <> 'deleted')
      AND NOT EXISTS (SELECT 1 FROM spares s WHERE s.vmid = free.c)
      AND NOT (c = ANY (avoid))
$$;

-- tenant_place (migration 0021) with the warm pool: on each candidate node, after its RAM
-- is reserved by the same statement as before, a ready spare of the project's template is
-- taken (its row deleted under FOR UPDATE SKIP LOCKED, so two creators never take the
-- same one and a spare being retired is never taken) and the tenant takes its VMID and
-- starts at `configure`. Nodes with a ready spare come first. Every rule of 0021 stays:
-- the advisory lock first, online, template, capacity, drains, maintenance (its trigger
-- drops the reserving UPDATE), the VMID retry on the unique index (VMIDs now also skip
-- spares').
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
    spare record;
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
        ORDER BY EXISTS (SELECT 1 FROM spares s
                         WHERE s.node_id = n.id AND s.project_id = p_project_id
                           AND s.template_vmid = p_template AND s.status = 'ready') DESC,
                 node_ram_capacity_mb(n.total_ram_mb) - n.allocated_ram_mb DESC, n.name
    LOOP
        UPDATE nodes n
        SET allocated_ram_mb = n.allocated_ram_mb + p_ram_mb, updated_at = n.updated_at
        WHERE n.id = cand
          AND n.status = 'online'
          AND n.allocated_ram_mb + p_ram_mb <= node_ram_capacity_mb(n.total_ram_mb)
        RETURNING n.id, n.vmid_range_start, n.vmid_range_end INTO node;
        CONTINUE WHEN NOT FOUND;
        -- A ready spare on this node: the tenant takes it (and its VMID), skipping the clone.
        BEGIN
            DELETE FROM spares s
            WHERE s.id = (SELECT x.id FROM spares x
                          WHERE x.node_id = node.id AND x.project_id = p_project_id
                            AND x.template_vmid = p_template AND x.status = 'ready'
                          ORDER BY x.ready_at, x.vmid
                          LIMIT 1
                          FOR UPDATE SKIP LOCKED)
              AND s.status = 'ready'
            RETURNING s.id, s.vmid INTO spare;
            IF FOUND THEN
                INSERT INTO tenants (id, name, subdomain, project_id, node_id, owner_user_id,
                                     vmid, ram_mb, cores, ram_reserved, status, step,
                                     spare_id)
                VALUES (p_id, p_name, p_subdomain, p_project_id, node.id, p_owner_user_id,
                        spare.vmid, p_ram_mb, p_cores, true, 'provisioning', 'configure',
                        spare.id)
                RETURNING * INTO placed;
                RETURN NEXT placed;
                RETURN;
            END IF;
        EXCEPTION WHEN unique_violation THEN
            -- The spare's VMID went to a tenant meanwhile (not through a placement): the
            -- block is rolled back, the spare stays, and the tenant is cloned instead.
            GET STACKED DIAGNOSTICS violated = CONSTRAINT_NAME;
            IF violated IS DISTINCT FROM 'tenants_vmid_live' THEN
                RAISE;
            END IF;
        END;
        FOR attempt IN 1..5 LOOP
            pick := placement_free_vmid(node.vmid_range_start, node.vmid_range_end, '{}');
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

-- A refill: one new spare row (status `cloning`, leased to its refiller) for a project on
-- a node, when the node may take one now: online, out of maintenance, not being drained,
-- holding the project's template, with room for one more tenant of the project's size,
-- and the project's pool on it not full. Under the placement lock, so its VMID is free of
-- tenants and spares; `avoid` lists the VMIDs the cluster holds (foreign containers).
CREATE FUNCTION spare_add(
    p_id uuid,
    p_project_id uuid,
    p_node_id uuid,
    p_owner text,
    p_lease double precision,
    p_avoid integer[]
) RETURNS SETOF spares
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    proj record;
    node record;
    pick integer;
    added spares;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('controlplane.tenant_place'));
    SELECT p.id, p.template_vmid, p.ram_mb, p.warm_pool_size INTO proj
    FROM projects p WHERE p.id = p_project_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT n.id, n.vmid_range_start, n.vmid_range_end INTO node
    FROM nodes n
    WHERE n.id = p_node_id AND n.status = 'online' AND NOT n.maintenance
      AND proj.template_vmid = ANY (n.templates)
      AND n.allocated_ram_mb + proj.ram_mb <= node_ram_capacity_mb(n.total_ram_mb)
      AND NOT EXISTS (SELECT 1 FROM drains d WHERE d.node_id = n.id AND d.status = 'running')
      AND (SELECT count(*) FROM spares s
           WHERE s.node_id = n.id AND s.project_id = proj.id
             AND s.status <> 'retiring') < proj.warm_pool_size;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    pick := placement_free_vmid(node.vmid_range_start, node.vmid_range_end,
                                coalesce(p_avoid, '{}'));
    IF pick IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO spares (id, project_id, node_id, template_vmid, vmid, status, step,
                        lease_owner, lease_expires_at)
    VALUES (p_id, proj.id, node.id, proj.template_vmid, pick, 'cloning', 'clone',
            p_owner, now() + make_interval(secs => p_lease))
    RETURNING * INTO added;
    RETURN NEXT added;
    RETURN;
END
$$;
