-- name: vmid_next_free
-- The lowest VMID in the range that no live tenant, no spare and `avoid` holds (0022).
SELECT placement_free_vmid(%(start)s, %(end)s, %(avoid)s::int[]) AS vmid


-- name: tenant_place
-- Reserve RAM, choose the VMID and insert the tenant in one statement (migration 0015).
SELECT * FROM tenant_place(%(id)s, %(name)s, %(subdomain)s, %(project_id)s,
                           %(owner_user_id)s, %(node_id)s, %(template)s, %(ram)s, %(cores)s)

-- name: tenant_place_audited
-- The same, and the audit entry in the same statement (one transaction, one round trip).
WITH placed AS (
    SELECT * FROM tenant_place(%(id)s, %(name)s, %(subdomain)s, %(project_id)s,
                               %(owner_user_id)s, %(node_id)s, %(template)s, %(ram)s, %(cores)s)
), entry AS (
    INSERT INTO audit_log (actor, action, target_type, target_id, details, client_ip,
                           request_id)
    SELECT %(actor)s, %(action)s, %(target_type)s, p.id::text,
           %(details)s::jsonb || jsonb_build_object('node_id', p.node_id, 'vmid', p.vmid),
           %(client_ip)s, %(request_id)s
    FROM placed p
)
SELECT * FROM placed

-- name: tenant_get
SELECT * FROM tenants
WHERE id = %(id)s AND (%(owner)s::uuid IS NULL OR owner_user_id = %(owner)s)

-- name: tenant_page
-- The page walks the (created_at, id) index and stops after `limit` rows; the total is a
-- separate count with the same filters (no wide CTE materialised for both).
SELECT
    (SELECT count(*) FROM tenants
     WHERE (%(status)s::text IS NULL OR status = %(status)s)
       AND (%(include_deleted)s OR status <> 'deleted' OR %(status)s::text = 'deleted')
       AND (%(node_id)s::uuid IS NULL OR node_id = %(node_id)s)
       AND (%(project_id)s::uuid IS NULL OR project_id = %(project_id)s)
       AND (%(owner)s::uuid IS NULL OR owner_user_id = %(owner)s)) AS total,
    coalesce((SELECT json_agg(p) FROM (
        -- Times as the rest of the API writes them (UTC, "Z"): the admin list sends this
        -- JSON as it is (see tenants.routes.list_tenants). Formatted outside the ordered,
        -- limited scan, so only the page's rows are formatted.
        SELECT id, name, subdomain, status, project_id, node_id, owner_user_id, vmid,
               ip_address, reported_ip_address, ram_mb, cores, disk_gb, operation, step,
               last_error, error_step, attempts, config_pending, health, observed,
               to_char(observed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS observed_at,
               to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
               to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at,
               to_char(deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS deleted_at
        FROM (
            SELECT * FROM tenants
            WHERE (%(status)s::text IS NULL OR status = %(status)s)
              AND (%(include_deleted)s OR status <> 'deleted' OR %(status)s::text = 'deleted')
              AND (%(node_id)s::uuid IS NULL OR node_id = %(node_id)s)
              AND (%(project_id)s::uuid IS NULL OR project_id = %(project_id)s)
              AND (%(owner)s::uuid IS NULL OR owner_user_id = %(owner)s)
            ORDER BY created_at DESC, id DESC
            LIMIT %(limit)s OFFSET %(offset)s) page) p), '[]'::json) AS items

-- name: tenant_transition
-- The one compare-and-swap every API transition goes through. A suspension remembers who
-- asked; a resume by anyone else but an admin is refused.
UPDATE tenants
SET status = %(to)s, step = %(step)s, next_attempt_at = now(), attempts = 0,
    last_error = CASE WHEN %(to)s = 'error' THEN last_error ELSE NULL END,
    force_delete = force_delete OR %(force)s,
    suspended_by = CASE WHEN %(to)s = 'suspending' THEN %(by)s
                        WHEN %(to)s IN ('resuming', 'deleting') THEN NULL
                        ELSE suspended_by END,
    updated_at = now()
WHERE id = %(id)s
  AND status = ANY (%(from)s::text[])
  AND (%(owner)s::uuid IS NULL OR owner_user_id = %(owner)s)
  AND (%(to)s <> 'resuming' OR %(by)s = 'admin' OR suspended_by IS NULL OR suspended_by = %(by)s)
  -- Not while a lifecycle operation has the tenant (a force delete cancels it first).
  AND operation_id IS NULL
RETURNING *

-- name: tenant_rename
UPDATE tenants SET name = %(name)s, updated_at = now()
WHERE id = %(id)s AND status <> 'deleted'
RETURNING *

-- name: tenant_resize
-- Change the size and the node's reservation together, only if the node has room.
WITH t AS (
    SELECT id, node_id, ram_mb AS old_ram FROM tenants
    WHERE id = %(id)s AND status IN ('provisioning', 'active', 'suspended', 'suspending', 'resuming', 'error')
      AND operation_id IS NULL
    FOR UPDATE
), n AS (
    UPDATE nodes SET allocated_ram_mb = allocated_ram_mb + (%(ram)s - t.old_ram)
    FROM t
    WHERE nodes.id = t.node_id
      AND (%(ram)s <= t.old_ram
           OR nodes.allocated_ram_mb + (%(ram)s - t.old_ram)
              <= node_ram_capacity_mb(nodes.total_ram_mb))
    RETURNING nodes.id
)
UPDATE tenants SET ram_mb = %(ram)s, cores = %(cores)s, config_pending = true, updated_at = now()
FROM n
WHERE tenants.id = %(id)s
RETURNING tenants.*

-- name: subdomain_held
-- The most recent user-owned tenant with this subdomain deleted within the hold, if any.
SELECT owner_user_id, deleted_at + make_interval(secs => %(hold)s) AS held_until
FROM tenants
WHERE subdomain = %(subdomain)s AND status = 'deleted' AND owner_user_id IS NOT NULL
  AND deleted_at > now() - make_interval(secs => %(hold)s)
ORDER BY deleted_at DESC
LIMIT 1

-- name: cancel_operation
-- A force delete ends the tenant's operation in progress: its worker loses it at its next
-- step (the swaps check the status) and the delete goes ahead.
-- A move cancelled before its switch gives the target's reservation back, like a failed one.
WITH o AS (
    UPDATE operations
    SET status = 'failed', error = 'cancelled: the tenant is being force-deleted',
        finished_at = now(), updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
    WHERE tenant_id = %(id)s AND status IN ('queued', 'running')
    RETURNING id, kind, params
), released AS (
    UPDATE nodes SET allocated_ram_mb = allocated_ram_mb - t.ram_mb
    FROM o, tenants t
    WHERE o.kind = 'move' AND t.id = %(id)s AND t.ram_reserved
      AND nodes.id = (o.params ->> 'target_node_id')::uuid
      AND t.node_id = (o.params ->> 'source_node_id')::uuid
    RETURNING nodes.id
)
UPDATE tenants SET operation_id = NULL, operation = NULL
WHERE id = %(id)s AND operation_id IN (SELECT id FROM o)

-- name: placement_candidates
-- For a project with bootstrap commands: the nodes tenant_place may use (online, out of
-- maintenance, not being drained, holding the template, with room), most free RAM first,
-- that also have SSH to run the commands. Each is then tried through tenant_place.
SELECT n.id
FROM nodes n
WHERE n.status = 'online'
  AND NOT n.maintenance
  AND n.ssh_host IS NOT NULL AND n.ssh_private_key_sealed IS NOT NULL
  AND %(template)s = ANY (n.templates)
  AND n.allocated_ram_mb + %(ram)s <= node_ram_capacity_mb(n.total_ram_mb)
  AND NOT EXISTS (SELECT 1 FROM drains d WHERE d.node_id = n.id AND d.status = 'running')
ORDER BY node_ram_capacity_mb(n.total_ram_mb) - n.allocated_ram_mb DESC, n.name

-- name: override_node
-- What an admin's node_id override is checked against before placing on it.
SELECT status, maintenance, templates,
       ssh_host IS NOT NULL AND ssh_private_key_sealed IS NOT NULL AS has_ssh
FROM nodes WHERE id = %(id)s
