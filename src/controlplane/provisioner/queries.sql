-- name: claim
-- Lease tenants that need work and that nobody holds (or whose holder died). The oldest
-- of each node first, then the second of each node, and so on: every node's clone queue
-- stays fed instead of one node's backlog taking every slot. The conditions are repeated
-- where the rows are locked, so a row leased meanwhile by another worker is re-checked.
WITH ranked AS (
    SELECT id, next_attempt_at,
           row_number() OVER (PARTITION BY node_id ORDER BY next_attempt_at) AS per_node
    FROM (
        SELECT id, node_id, next_attempt_at FROM tenants
        WHERE (status IN ('provisioning', 'suspending', 'resuming', 'deleting') OR config_pending)
          AND next_attempt_at <= now()
          AND (lease_expires_at IS NULL OR lease_expires_at < now())
        ORDER BY next_attempt_at
        LIMIT 1000) due
), picked AS (
    SELECT t.id FROM tenants t JOIN ranked r ON r.id = t.id
    WHERE (t.status IN ('provisioning', 'suspending', 'resuming', 'deleting') OR t.config_pending)
      AND (t.lease_expires_at IS NULL OR t.lease_expires_at < now())
    ORDER BY r.per_node, r.next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE OF t SKIP LOCKED
)
UPDATE tenants t
SET lease_owner = %(owner)s, lease_expires_at = now() + make_interval(secs => %(lease)s)
FROM picked
WHERE t.id = picked.id
RETURNING t.id

-- name: renew
UPDATE tenants SET lease_expires_at = now() + make_interval(secs => %(lease)s)
WHERE id = ANY (%(ids)s::uuid[]) AND lease_owner = %(owner)s
RETURNING id

-- name: release
UPDATE tenants SET lease_owner = NULL, lease_expires_at = NULL
WHERE id = %(id)s AND lease_owner = %(owner)s

-- name: release_all
UPDATE tenants SET lease_owner = NULL, lease_expires_at = NULL
WHERE lease_owner = %(owner)s

-- name: get
SELECT t.*, p.template_vmid, p.app_port, p.bootstrap_commands, p.health_path,
       p.keep_backups_days
FROM tenants t LEFT JOIN projects p ON p.id = t.project_id
WHERE t.id = %(id)s

-- name: set_step
-- Progress to a new step resets the failure count: backoff and the error limit are about
-- consecutive failures of one step, not the whole history of the operation.
UPDATE tenants SET step = %(step)s, updated_at = now(),
    attempts = CASE WHEN step IS DISTINCT FROM %(step)s THEN 0 ELSE attempts END
WHERE id = %(id)s AND status = %(status)s AND lease_owner = %(owner)s
RETURNING id

-- name: set_vmid
UPDATE tenants SET vmid = %(vmid)s, updated_at = now()
WHERE id = %(id)s AND status = 'provisioning' AND lease_owner = %(owner)s
RETURNING id

-- name: pin_ip
-- First provisioning only: an address already pinned is never replaced. Another live
-- tenant's address is refused here and, against races, by tenants_live_ip_address_key.
UPDATE tenants SET ip_address = %(ip)s, reported_ip_address = NULL, updated_at = now()
WHERE id = %(id)s AND lease_owner = %(owner)s AND ip_address IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM tenants o
      WHERE o.ip_address = %(ip)s AND o.id <> %(id)s AND o.status <> 'deleted')
RETURNING ip_address

-- name: ip_holder
SELECT id, subdomain FROM tenants
WHERE ip_address = %(ip)s AND id <> %(id)s AND status <> 'deleted'
LIMIT 1

-- name: node_hosts
SELECT api_url, ssh_host FROM nodes

-- name: set_reported_ip
-- What the container reports, when it differs from the pin (NULL when it agrees again).
UPDATE tenants
SET reported_ip_address = %(reported)s,
    health = CASE WHEN %(reported)s::text IS NOT NULL THEN 'address_changed'
                  WHEN health = 'address_changed' THEN NULL ELSE health END,
    updated_at = now()
WHERE id = %(id)s AND lease_owner = %(owner)s
  AND reported_ip_address IS DISTINCT FROM %(reported)s

-- name: set_commands
UPDATE tenants SET command_output = %(output)s, updated_at = now()
WHERE id = %(id)s AND lease_owner = %(owner)s

-- name: finish
-- The final compare-and-swap of an operation: only from the status we worked on.
UPDATE tenants
SET status = %(to)s, step = NULL, attempts = 0, last_error = NULL, error_step = NULL,
    failed_status = NULL, updated_at = now()
WHERE id = %(id)s AND status = %(from)s AND lease_owner = %(owner)s
RETURNING id

-- name: move_targets
-- Nodes a move of the tenant was headed for that did not end with the tenant there.
SELECT DISTINCT n.id AS node_id
FROM operations o JOIN nodes n ON n.id = (o.params ->> 'target_node_id')::uuid
WHERE o.tenant_id = %(id)s AND o.kind = 'move' AND o.status <> 'succeeded'

-- name: finish_deleted
-- Deleted: release the RAM exactly once (ram_reserved flips in the same statement).
WITH old AS (
    SELECT id, node_id, ram_mb, ram_reserved FROM tenants
    WHERE id = %(id)s AND status = 'deleting' AND lease_owner = %(owner)s
    FOR UPDATE
), t AS (
    UPDATE tenants
    SET status = 'deleted', step = NULL, attempts = 0, last_error = NULL, error_step = NULL,
        failed_status = NULL, ram_reserved = false, deleted_at = now(), updated_at = now()
    FROM old WHERE tenants.id = old.id
    RETURNING old.node_id, old.ram_mb, old.ram_reserved
), n AS (
    UPDATE nodes SET allocated_ram_mb = allocated_ram_mb - t.ram_mb
    FROM t WHERE nodes.id = t.node_id AND t.ram_reserved
    RETURNING nodes.id
)
SELECT (SELECT count(*) FROM t) AS done, (SELECT count(*) FROM n) AS released

-- name: config_applied
UPDATE tenants SET config_pending = false, updated_at = now()
WHERE id = %(id)s AND ram_mb = %(ram)s AND cores = %(cores)s AND lease_owner = %(owner)s

-- name: retry_later
UPDATE tenants
SET attempts = attempts + 1, last_error = %(error)s, error_step = %(step)s,
    next_attempt_at = now() + make_interval(secs => %(delay)s), updated_at = now()
WHERE id = %(id)s AND lease_owner = %(owner)s

-- name: fail
UPDATE tenants
SET status = 'error', failed_status = status, error_step = %(step)s, last_error = %(error)s,
    step = NULL, updated_at = now()
WHERE id = %(id)s AND status = %(from)s AND lease_owner = %(owner)s
RETURNING id

-- name: orphan_live_vmids
-- The containers that belong to a tenant or are a warm pool's spare: everything else with
-- our tags is an orphan.
SELECT vmid, id FROM tenants WHERE status <> 'deleted' AND vmid IS NOT NULL
UNION ALL
SELECT vmid, id FROM spares

-- name: orphan_nodes
SELECT * FROM nodes ORDER BY name

-- name: orphan_owner
SELECT id FROM tenants WHERE vmid = %(vmid)s AND status <> 'deleted'

-- name: orphan_spare
SELECT id FROM spares WHERE vmid = %(vmid)s

-- name: placement_lock
-- The lock every placement takes first (tenant_place, spare_add; migrations 0021, 0022).
SELECT pg_advisory_xact_lock(hashtext('controlplane.tenant_place'))

-- name: node_of
SELECT * FROM nodes WHERE id = %(id)s

-- name: status_claim
-- The status poller lists each node once per period, so a node's tenants are claimed
-- together: every active tenant of a node that has one due (observed_at older than the
-- period) and that was not itself checked in the last half period. The claim is a
-- compare-and-swap on observed_at: a second replica's FOR UPDATE re-checks the row it
-- waited for, finds it fresh, and skips it. The half period lets a node's tenants fall
-- into step after a new one arrives (one extra list, then one per period again).
UPDATE tenants t SET observed_at = now()
FROM projects p
WHERE t.id IN (
    SELECT id FROM tenants
    WHERE status = 'active'
      AND node_id IN (
          SELECT node_id FROM tenants
          WHERE status = 'active'
            AND (observed_at IS NULL
                 OR observed_at < now() - make_interval(secs => %(period)s)))
      AND (observed_at IS NULL OR observed_at < now() - make_interval(secs => %(period)s::float8 / 2))
    ORDER BY observed_at NULLS FIRST
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
  AND p.id = t.project_id
RETURNING t.id, t.node_id, t.vmid, t.ip_address, t.reported_ip_address, t.observed,
          t.health, p.app_port, p.health_path

-- name: status_record
-- What one round saw of a node's tenants, in one statement (not one per tenant).
UPDATE tenants t SET observed = v.observed, health = v.health
FROM unnest(%(ids)s::uuid[], %(observed)s::jsonb[], %(health)s::text[]) AS v(id, observed, health)
WHERE t.id = v.id

-- name: pending_work
SELECT count(*) AS n FROM tenants
WHERE status IN ('provisioning', 'suspending', 'resuming', 'deleting') OR config_pending

-- name: forget_snapshots
DELETE FROM snapshots WHERE tenant_id = %(id)s

-- name: forget_schedule
DELETE FROM backup_schedules WHERE tenant_id = %(id)s

-- name: expire_backups
-- Kept for the project's days after the delete; the backup scheduler's sweep removes them.
UPDATE backups SET expires_at = now() + make_interval(days => %(days)s)
WHERE tenant_id = %(id)s AND expires_at IS NULL

-- name: backups_of_tenant
SELECT * FROM backups WHERE tenant_id = %(id)s

-- name: forget_backup
DELETE FROM backups WHERE id = %(id)s

-- name: set_disk
UPDATE tenants SET disk_gb = %(disk_gb)s WHERE id = %(id)s AND disk_gb IS DISTINCT FROM %(disk_gb)s
