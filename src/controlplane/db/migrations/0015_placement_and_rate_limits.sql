-- Placing a tenant in one statement: reserve RAM on the first candidate node with room,
-- choose the lowest free VMID of its range and insert the tenant.
--
-- Why a function: the reservation locks the node's row until commit, and every creator on
-- that node queues behind the lock. Run from the application as three statements and a
-- commit, the lock was held across four round trips through a busy event loop (about 40 ms
-- each under a burst of creates, so 25 creates a second per node). As one autocommit
-- statement it is held only while PostgreSQL runs it. plpgsql takes a fresh snapshot for
-- each statement (a VOLATILE function), so the VMID query sees the tenant the previous
-- lock holder committed.
--
-- A VMID taken meanwhile by a creator on a node with an overlapping range is refused by the
-- unique index: the next pick is tried (five times). A node whose range is full gives its
-- reservation back and the next candidate is tried. No row: no candidate had room.
CREATE FUNCTION tenant_place(
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

-- Rate limits every replica shares (RATE_LIMIT_STORAGE=postgresql): a sliding-window
-- counter per (bucket and client, window). UNLOGGED: counters need no crash safety, and a
-- crash resetting them is what a restart of the in-memory store does.
CREATE UNLOGGED TABLE rate_limit_windows (
    key text NOT NULL,
    window_start bigint NOT NULL,  -- epoch seconds / window length
    hits integer NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- One hit: allowed when the previous window's count, weighted by how much of it still
-- overlaps the sliding window, plus this window's count stays within the limit (the
-- `limits` package's sliding-window counter). A refused hit is not counted. Returns
-- whether it was allowed and, if not, the seconds until one more would be.
CREATE FUNCTION rate_limit_hit(p_key text, p_limit integer, p_window_s integer)
RETURNS TABLE (allowed boolean, retry_after double precision)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    now_s double precision := extract(epoch FROM clock_timestamp());
    cur bigint := floor(now_s / p_window_s)::bigint;
    elapsed double precision := (now_s - cur * p_window_s) / p_window_s;
    prev_hits integer;
    cur_hits integer;
BEGIN
    SELECT w.hits INTO prev_hits FROM rate_limit_windows w
    WHERE w.key = p_key AND w.window_start = cur - 1;
    prev_hits := coalesce(prev_hits, 0);
    INSERT INTO rate_limit_windows AS w (key, window_start, hits)
    SELECT p_key, cur, 1
    WHERE prev_hits * (1 - elapsed) + 1 <= p_limit
    ON CONFLICT (key, window_start) DO UPDATE SET hits = w.hits + 1
        WHERE prev_hits * (1 - elapsed) + w.hits + 1 <= p_limit
    RETURNING w.hits INTO cur_hits;
    IF cur_hits IS NOT NULL THEN
        -- Now and then, forget windows nobody can count any more.
        IF random() < 0.01 THEN
            DELETE FROM rate_limit_windows WHERE window_start < cur - 1;
        END IF;
        RETURN QUERY SELECT true, 0.0::double precision;
        RETURN;
    END IF;
    SELECT w.hits INTO cur_hits FROM rate_limit_windows w
    WHERE w.key = p_key AND w.window_start = cur;
    cur_hits := coalesce(cur_hits, 0);
    IF prev_hits = 0 OR cur_hits + 1 > p_limit THEN
        -- This window alone is full: wait for the next one (and its share of this one).
        RETURN QUERY SELECT false, ((1 - elapsed) * p_window_s
            + greatest(0.0, 1 - (p_limit - 1)::double precision / cur_hits) * p_window_s);
        RETURN;
    END IF;
    -- The previous window's share must shrink to make room for one more.
    RETURN QUERY SELECT false, greatest(0.0,
        (1 - (p_limit - cur_hits - 1)::double precision / prev_hits) - elapsed) * p_window_s;
END
$$;
