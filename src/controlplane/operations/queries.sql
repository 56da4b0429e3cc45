-- name: insert_operation
-- The partial unique index operations_one_per_tenant refuses a second one in progress.
INSERT INTO operations (id, tenant_id, kind, params, requested_by)
VALUES (%(id)s, %(tenant_id)s, %(kind)s, %(params)s, %(by)s)
RETURNING *

-- name: claim_tenant
-- The compare-and-swap that gives the tenant to the operation: only from the statuses the
-- kind allows, with no other operation and no size change waiting for the tenant worker.
-- The tenant's suspend, resume and delete swap on the same row and column, so exactly one
-- of them and this can win.
UPDATE tenants
SET operation_id = %(op_id)s,
    operation = jsonb_build_object('id', %(op_id)s::text, 'kind', %(kind)s::text,
                                   'status', 'queued', 'step', NULL),
    updated_at = now()
WHERE id = %(tenant_id)s AND status = ANY (%(statuses)s::text[]) AND operation_id IS NULL
  AND NOT config_pending
  AND (%(owner)s::uuid IS NULL OR owner_user_id = %(owner)s)
RETURNING *

-- name: tenant_for_operation
SELECT t.*, p.template_vmid, p.app_port, p.bootstrap_commands, p.health_path,
       p.backup_storage, p.keep_backups_days
FROM tenants t LEFT JOIN projects p ON p.id = t.project_id
WHERE t.id = %(id)s AND (%(owner)s::uuid IS NULL OR t.owner_user_id = %(owner)s)
  AND t.status <> 'deleted'

-- name: usage
-- What a user's live tenants hold against the tier caps.
SELECT
    (SELECT count(*) FROM snapshots s JOIN tenants t ON t.id = s.tenant_id
     WHERE t.owner_user_id = %(user_id)s AND t.status NOT IN ('deleting', 'deleted')) AS snapshots,
    (SELECT count(*) FROM backups b JOIN tenants t ON t.id = b.tenant_id
     WHERE t.owner_user_id = %(user_id)s AND t.status NOT IN ('deleting', 'deleted')) AS backups,
    (SELECT coalesce(sum(disk_gb), 0) FROM tenants t
     WHERE t.owner_user_id = %(user_id)s AND t.status NOT IN ('deleting', 'deleted')
       AND t.id <> %(tenant_id)s) AS other_disk_gb

-- name: operation_get
SELECT * FROM operations o
WHERE o.id = %(id)s
  AND (%(owner)s::uuid IS NULL
       OR EXISTS (SELECT 1 FROM tenants t WHERE t.id = o.tenant_id AND t.owner_user_id = %(owner)s))

-- name: operation_in_progress
SELECT id, kind, status FROM operations
WHERE tenant_id = %(tenant_id)s AND status IN ('queued', 'running')

-- name: operations_of_tenant
SELECT * FROM operations WHERE tenant_id = %(tenant_id)s
ORDER BY created_at DESC LIMIT %(limit)s

-- name: snapshot_insert
INSERT INTO snapshots (tenant_id, name, description, status, operation_id)
VALUES (%(tenant_id)s, %(name)s, %(description)s, 'creating', %(op_id)s)
RETURNING *

-- name: snapshot_mark
-- A snapshot's own compare-and-swap: only from the statuses the operation may start from.
UPDATE snapshots SET status = %(to)s, operation_id = %(op_id)s
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND status = ANY (%(from)s::text[])
RETURNING *

-- name: snapshot_get
SELECT * FROM snapshots WHERE tenant_id = %(tenant_id)s AND name = %(name)s

-- name: snapshots_of_tenant
SELECT * FROM snapshots WHERE tenant_id = %(tenant_id)s ORDER BY created_at, name

-- name: backup_insert
INSERT INTO backups (id, tenant_id, node_id, pve_node, storage, scheduled, status, operation_id)
VALUES (%(id)s, %(tenant_id)s, %(node_id)s, %(pve_node)s, %(storage)s, %(scheduled)s,
        'creating', %(op_id)s)
RETURNING *

-- name: backup_mark
UPDATE backups SET status = %(to)s, operation_id = %(op_id)s
WHERE id = %(id)s AND tenant_id = %(tenant_id)s AND status = ANY (%(from)s::text[])
RETURNING *

-- name: backup_get
SELECT * FROM backups WHERE id = %(id)s AND tenant_id = %(tenant_id)s

-- name: backups_of_tenant
SELECT * FROM backups WHERE tenant_id = %(tenant_id)s ORDER BY created_at DESC

-- name: node_of
SELECT id, pve_node, name FROM nodes WHERE id = %(id)s

-- name: schedule_get
SELECT * FROM backup_schedules WHERE tenant_id = %(tenant_id)s

-- name: schedule_upsert
INSERT INTO backup_schedules (tenant_id, frequency, at_time, weekday, keep_last, keep_daily,
                              keep_weekly, next_run_at)
VALUES (%(tenant_id)s, %(frequency)s, %(at)s, %(weekday)s, %(keep_last)s, %(keep_daily)s,
        %(keep_weekly)s, %(next_run_at)s)
ON CONFLICT (tenant_id) DO UPDATE
SET frequency = EXCLUDED.frequency, at_time = EXCLUDED.at_time, weekday = EXCLUDED.weekday,
    keep_last = EXCLUDED.keep_last, keep_daily = EXCLUDED.keep_daily,
    keep_weekly = EXCLUDED.keep_weekly, next_run_at = EXCLUDED.next_run_at, updated_at = now()
RETURNING *

-- name: schedule_delete
DELETE FROM backup_schedules WHERE tenant_id = %(tenant_id)s RETURNING tenant_id

-- name: resize_reserve
-- The new size and the node's reservation together, only if the node has room (the same
-- ledger rule as a tenant's create); the tenant must already be this operation's.
WITH t AS (
    SELECT id, node_id, ram_mb AS old_ram FROM tenants
    WHERE id = %(id)s AND operation_id = %(op_id)s
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
UPDATE tenants SET ram_mb = %(ram)s, cores = %(cores)s, updated_at = now()
FROM n
WHERE tenants.id = %(id)s
RETURNING tenants.*

-- == the operation workers ==================================================================

-- name: claim
-- Lease due operations nobody holds (or whose holder died), and their tenants with them:
-- the tenant's own steps (address, bootstrap output) check the tenant's lease.
WITH picked AS (
    SELECT id FROM operations
    WHERE status IN ('queued', 'running') AND next_attempt_at <= now()
      AND (lease_expires_at IS NULL OR lease_expires_at < now())
    ORDER BY next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), o AS (
    UPDATE operations o
    SET lease_owner = %(owner)s, lease_expires_at = now() + make_interval(secs => %(lease)s),
        status = 'running', started_at = coalesce(o.started_at, now()), updated_at = now()
    FROM picked WHERE o.id = picked.id
    RETURNING o.id, o.tenant_id
), t AS (
    UPDATE tenants
    SET lease_owner = %(owner)s, lease_expires_at = now() + make_interval(secs => %(lease)s),
        operation = coalesce(operation, '{}') || '{"status": "running"}'
    FROM o WHERE tenants.id = o.tenant_id AND tenants.operation_id = o.id
    RETURNING tenants.id
)
SELECT o.id, o.tenant_id, (SELECT count(*) FROM t) AS tenants FROM o

-- name: renew
WITH o AS (
    UPDATE operations SET lease_expires_at = now() + make_interval(secs => %(lease)s)
    WHERE id = ANY (%(ids)s::uuid[]) AND lease_owner = %(owner)s
    RETURNING id, tenant_id
), t AS (
    UPDATE tenants SET lease_expires_at = now() + make_interval(secs => %(lease)s)
    FROM o WHERE tenants.id = o.tenant_id AND tenants.lease_owner = %(owner)s
    RETURNING tenants.id
)
SELECT id FROM o

-- name: release
WITH o AS (
    UPDATE operations SET lease_owner = NULL, lease_expires_at = NULL
    WHERE id = %(id)s AND lease_owner = %(owner)s
    RETURNING tenant_id
)
UPDATE tenants SET lease_owner = NULL, lease_expires_at = NULL
WHERE id = (SELECT tenant_id FROM operations WHERE id = %(id)s) AND lease_owner = %(owner)s
  AND status IN ('active', 'suspended')

-- name: release_all
UPDATE operations SET lease_owner = NULL, lease_expires_at = NULL
WHERE lease_owner = %(owner)s AND status IN ('queued', 'running')

-- name: get
SELECT * FROM operations WHERE id = %(id)s

-- name: pending_work
SELECT count(*) FROM operations WHERE status IN ('queued', 'running')

-- name: set_step
-- Progress to a new step resets the failure count (as for tenants); the tenant's summary
-- follows, so its views and live events show the step.
WITH o AS (
    UPDATE operations
    SET step = %(step)s, updated_at = now(),
        attempts = CASE WHEN step IS DISTINCT FROM %(step)s THEN 0 ELSE attempts END
    WHERE id = %(id)s AND status = 'running' AND lease_owner = %(owner)s
    RETURNING id, tenant_id
), t AS (
    UPDATE tenants
    SET operation = coalesce(operation, '{}') || jsonb_build_object('step', %(step)s::text)
    FROM o WHERE tenants.id = o.tenant_id AND tenants.operation_id = o.id
    RETURNING tenants.id
)
SELECT id FROM o

-- name: set_upid
UPDATE operations SET upids = upids || jsonb_build_object(%(step)s::text, %(upid)s::text),
    updated_at = now()
WHERE id = %(id)s AND status = 'running' AND lease_owner = %(owner)s
RETURNING id

-- name: clear_upid
UPDATE operations SET upids = upids - %(step)s::text, updated_at = now()
WHERE id = %(id)s AND lease_owner = %(owner)s

-- name: set_state
UPDATE operations SET state = state || %(patch)s, updated_at = now()
WHERE id = %(id)s AND status = 'running' AND lease_owner = %(owner)s
RETURNING id

-- name: retry_later
UPDATE operations
SET attempts = attempts + 1, error = %(error)s, updated_at = now(),
    next_attempt_at = now() + make_interval(secs => %(delay)s),
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = %(id)s AND lease_owner = %(owner)s

-- name: finish
-- The operation's final compare-and-swap, and the tenant freed in the same statement.
WITH o AS (
    UPDATE operations
    SET status = %(status)s, error = %(error)s, finished_at = now(), updated_at = now(),
        next_attempt_at = now(), lease_owner = NULL, lease_expires_at = NULL
    WHERE id = %(id)s AND status = 'running' AND lease_owner = %(owner)s
    RETURNING id, tenant_id
)
UPDATE tenants
SET operation_id = NULL, operation = NULL, lease_owner = NULL, lease_expires_at = NULL,
    updated_at = now()
FROM o WHERE tenants.id = o.tenant_id AND tenants.operation_id = o.id
RETURNING tenants.id

-- name: finished
SELECT id FROM operations WHERE id = %(id)s AND status IN ('succeeded', 'failed')

-- name: snapshot_settle
UPDATE snapshots SET status = %(to)s
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND operation_id = %(op_id)s

-- name: snapshot_remove
DELETE FROM snapshots
WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND operation_id = %(op_id)s

-- name: snapshots_forget
-- The container was replaced (restore, rebuild): its snapshots went with it.
DELETE FROM snapshots WHERE tenant_id = %(tenant_id)s

-- name: backup_settle
UPDATE backups
SET status = %(to)s, volid = coalesce(%(volid)s, volid), size_bytes = coalesce(%(size)s, size_bytes),
    finished_at = CASE WHEN %(to)s = 'ready' THEN now() ELSE finished_at END
WHERE id = %(id)s AND operation_id = %(op_id)s

-- name: backup_remove
DELETE FROM backups WHERE id = %(id)s

-- name: backup_found
-- What a step learnt of the archive, kept at once: a crash later never loses the volid.
UPDATE backups SET volid = %(volid)s, size_bytes = %(size)s WHERE id = %(id)s

-- name: scheduled_backups
SELECT id, created_at, volid, storage, pve_node, node_id, status FROM backups
WHERE tenant_id = %(tenant_id)s AND scheduled AND status IN ('ready', 'creating')

-- name: set_disk
UPDATE tenants SET disk_gb = %(disk_gb)s WHERE id = %(id)s

-- name: resize_failed
-- The new size stays reserved; the tenant worker applies it to the container later.
UPDATE tenants SET config_pending = true, updated_at = now() WHERE id = %(id)s

-- name: commands_reset
UPDATE tenants SET command_output = '[]' WHERE id = %(id)s

-- name: backup_by_id
SELECT * FROM backups WHERE id = %(id)s

-- name: tenant_of_operation
-- What the steps need of the tenant: the provisioner's steps take this same shape.
SELECT t.*, p.template_vmid, p.app_port, p.bootstrap_commands, p.health_path, p.backup_storage
FROM tenants t LEFT JOIN projects p ON p.id = t.project_id
WHERE t.id = %(id)s

-- == the backup scheduler ===================================================================

-- name: schedules_due
-- Locked until the round's transaction ends; another replica skips them.
SELECT s.* FROM backup_schedules s JOIN tenants t ON t.id = s.tenant_id
WHERE s.next_run_at <= now() AND t.status IN ('active', 'suspended')
ORDER BY s.next_run_at
LIMIT %(limit)s
FOR UPDATE OF s SKIP LOCKED

-- name: schedule_ran
UPDATE backup_schedules SET next_run_at = %(next)s, last_run_at = now()
WHERE tenant_id = %(tenant_id)s

-- name: schedule_postpone
UPDATE backup_schedules SET next_run_at = %(at)s WHERE tenant_id = %(tenant_id)s

-- name: backups_expired
SELECT id FROM backups WHERE expires_at <= now() ORDER BY expires_at LIMIT %(limit)s

-- name: backup_expire_claim
-- A short lease on the expired backup (its expiry moved a little later), so two replicas
-- never delete the same one at once and a crash mid-delete is retried later.
UPDATE backups b SET status = 'deleting', expires_at = now() + interval '10 minutes'
FROM tenants t
WHERE b.id = %(id)s AND b.expires_at <= now() AND t.id = b.tenant_id
RETURNING b.*, t.vmid

-- == moves and drains =======================================================================

-- name: move_target
SELECT id, name, pve_node, status FROM nodes WHERE id = %(id)s

-- name: reserve_on_target
-- The tenant's RAM on the target, before anything moves (released again if the move fails).
UPDATE nodes SET allocated_ram_mb = allocated_ram_mb + %(ram)s
WHERE id = %(id)s AND allocated_ram_mb + %(ram)s <= node_ram_capacity_mb(total_ram_mb)
RETURNING id

-- name: move_switch
-- The container is on the target: the tenant follows and the source's reservation goes,
-- both exactly once (the swap on node_id).
WITH t AS (
    UPDATE tenants SET node_id = %(target)s, updated_at = now()
    WHERE id = %(id)s AND node_id = %(source)s AND operation_id = %(op_id)s
    RETURNING id, ram_mb, ram_reserved
), n AS (
    UPDATE nodes SET allocated_ram_mb = allocated_ram_mb - t.ram_mb
    FROM t WHERE nodes.id = %(source)s AND t.ram_reserved
    RETURNING nodes.id
)
SELECT (SELECT count(*) FROM t) AS switched

-- name: move_set_method
UPDATE operations SET method = %(method)s, updated_at = now() WHERE id = %(id)s

-- name: move_set_downtime
UPDATE operations SET downtime_s = %(downtime)s, updated_at = now() WHERE id = %(id)s

-- name: move_backup_keep
-- A move's archive is one of the tenant's backups until the move is done (the row's id is
-- the operation's, as in the archive's notes), so a repair can restore it if the move
-- fails after the source was destroyed.
INSERT INTO backups (id, tenant_id, node_id, pve_node, storage, volid, size_bytes, status,
                     operation_id, finished_at)
VALUES (%(id)s, %(tenant_id)s, %(node_id)s, %(pve_node)s, %(storage)s, %(volid)s, %(size)s,
        'ready', %(id)s, now())
ON CONFLICT (id) DO NOTHING

-- name: move_backup_forget
DELETE FROM backups WHERE id = %(id)s

-- name: move_release_target
-- A move that failed before the switch gives the target's reservation back.
UPDATE nodes SET allocated_ram_mb = allocated_ram_mb - t.ram_mb
FROM tenants t
WHERE nodes.id = %(target)s AND t.id = %(id)s AND t.node_id = %(source)s AND t.ram_reserved

-- name: drain_insert
INSERT INTO drains (id, node_id, max_parallel, requested_by)
VALUES (%(id)s, %(node_id)s, %(max_parallel)s, %(by)s)
RETURNING *

-- name: drain_latest
SELECT d.*,
    (SELECT count(*) FROM operations o WHERE o.drain_id = d.id AND o.status = 'succeeded') AS moved,
    (SELECT count(*) FROM operations o WHERE o.drain_id = d.id AND o.status = 'failed') AS failed,
    (SELECT count(*) FROM operations o
     WHERE o.drain_id = d.id AND o.status IN ('queued', 'running')) AS in_flight,
    (SELECT count(*) FROM tenants t WHERE t.node_id = d.node_id AND t.status <> 'deleted') AS remaining
FROM drains d WHERE d.node_id = %(node_id)s
ORDER BY d.created_at DESC LIMIT 1

-- name: drain_cancel
UPDATE drains SET status = 'cancelled', finished_at = now()
WHERE node_id = %(node_id)s AND status = 'running'
RETURNING id

-- name: drains_running
SELECT * FROM drains WHERE status = 'running' ORDER BY created_at FOR UPDATE SKIP LOCKED

-- name: drain_candidates
-- The drained node's tenants that can move now: settled, free, and not already failed to
-- move in this drain (a failure is reported, not retried in a loop).
SELECT t.id, t.ram_mb FROM tenants t
WHERE t.node_id = %(node_id)s AND t.status IN ('active', 'suspended')
  AND t.operation_id IS NULL AND NOT t.config_pending
  AND NOT EXISTS (SELECT 1 FROM operations o
                  WHERE o.tenant_id = t.id AND o.drain_id = %(drain_id)s AND o.kind = 'move')
ORDER BY t.created_at
LIMIT %(limit)s

-- name: drain_target
-- Where a drained tenant goes: another online node, not itself being drained, with room;
-- the most free RAM first.
SELECT n.id FROM nodes n
WHERE n.id <> %(node_id)s AND n.status = 'online'
  AND n.allocated_ram_mb + %(ram)s <= node_ram_capacity_mb(n.total_ram_mb)
  AND NOT EXISTS (SELECT 1 FROM drains d WHERE d.node_id = n.id AND d.status = 'running')
ORDER BY node_ram_capacity_mb(n.total_ram_mb) - n.allocated_ram_mb DESC, n.name
LIMIT 1

-- name: drain_in_flight
SELECT count(*) FROM operations WHERE drain_id = %(drain_id)s AND status IN ('queued', 'running')

-- name: drain_done
UPDATE drains SET status = 'done', finished_at = now() WHERE id = %(id)s AND status = 'running'

-- name: operation_set_drain
UPDATE operations SET drain_id = %(drain_id)s WHERE id = %(id)s

-- name: drain_unsettled
-- Tenants on the node in the middle of something else: the drain waits for them.
SELECT count(*) FROM tenants
WHERE node_id = %(node_id)s AND status IN ('provisioning', 'suspending', 'resuming')

-- name: node_templates
SELECT id, name, templates FROM nodes WHERE id = %(id)s

-- name: latest_backup_on_node
SELECT * FROM backups
WHERE tenant_id = %(tenant_id)s AND node_id = %(node_id)s AND status = 'ready'
  AND volid IS NOT NULL
ORDER BY created_at DESC LIMIT 1

-- name: repair_candidates
-- Active tenants whose container the status poller found stopped or gone, in projects that
-- ask for a repair, with nothing else running and no repair in the last few minutes (a
-- container that keeps dying is flagged, not restarted in a loop).
SELECT t.id FROM tenants t JOIN projects p ON p.id = t.project_id
WHERE p.on_container_stopped = 'restart' AND t.status = 'active'
  AND t.health IN ('container_stopped', 'container_missing')
  AND t.operation_id IS NULL AND NOT t.config_pending
  AND NOT EXISTS (SELECT 1 FROM operations o
                  WHERE o.tenant_id = t.id AND o.kind = 'repair'
                    AND o.created_at > now() - make_interval(secs => %(quiet)s))
ORDER BY t.updated_at
LIMIT %(limit)s
