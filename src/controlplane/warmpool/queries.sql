-- name: spare_retire_stale
-- Spares that can no longer be taken go to `retiring` (then destroyed): the project is gone
-- or has another template now, the node no longer holds the template, or the pool is
-- larger than the project wants (the newest extras first). A ready spare a create is
-- taking holds its row lock: SKIP LOCKED passes it, and the take deletes it.
WITH judged AS (
    SELECT s.id, s.project_id, s.node_id, s.status, s.created_at,
           s.project_id IS NULL
           OR p.template_vmid IS DISTINCT FROM s.template_vmid
           OR NOT (s.template_vmid = ANY (n.templates)) AS stale,
           coalesce(p.warm_pool_size, 0) AS wanted
    FROM spares s
    JOIN nodes n ON n.id = s.node_id
    LEFT JOIN projects p ON p.id = s.project_id
    WHERE s.status <> 'retiring'
), ranked AS (
    SELECT id, stale, wanted,
           row_number() OVER (PARTITION BY project_id, node_id, stale
                              ORDER BY status = 'ready' DESC, created_at, id) AS rank
    FROM judged
), doomed AS (
    SELECT s.id FROM spares s JOIN ranked r ON r.id = s.id
    WHERE (r.stale OR r.rank > r.wanted)
      AND s.status <> 'retiring'
      AND (s.status = 'ready' OR s.lease_expires_at IS NULL OR s.lease_expires_at < now())
    FOR UPDATE OF s SKIP LOCKED
)
UPDATE spares s
SET status = 'retiring', step = 'destroy', attempts = 0, next_attempt_at = now(),
    updated_at = now()
FROM doomed WHERE s.id = doomed.id
RETURNING s.id

-- name: spare_deficits
-- Where a project's pool is short: nodes a refill may use (see spare_add, which checks
-- again under the placement lock), skipping nodes where a tenant waits for its clone, so
-- refills never stand between a tenant and the template.
SELECT p.id AS project_id, n.id AS node_id, n.name AS node,
       p.warm_pool_size - count(s.id) AS missing
FROM projects p
JOIN nodes n ON p.template_vmid = ANY (n.templates)
LEFT JOIN spares s ON s.project_id = p.id AND s.node_id = n.id AND s.status <> 'retiring'
                  AND s.template_vmid = p.template_vmid
WHERE p.warm_pool_size > 0
  AND n.status = 'online' AND NOT n.maintenance
  AND n.allocated_ram_mb + p.ram_mb <= node_ram_capacity_mb(n.total_ram_mb)
  AND NOT EXISTS (SELECT 1 FROM drains d WHERE d.node_id = n.id AND d.status = 'running')
  AND NOT EXISTS (SELECT 1 FROM tenants t
                  WHERE t.node_id = n.id AND t.status = 'provisioning' AND t.step = 'clone')
  -- A node's clones of one template are serialised: one spare in the making at a time.
  AND NOT EXISTS (SELECT 1 FROM spares c
                  WHERE c.node_id = n.id AND c.template_vmid = p.template_vmid
                    AND c.status = 'cloning')
GROUP BY p.id, n.id
HAVING count(s.id) < p.warm_pool_size
ORDER BY count(s.id), n.name, p.id

-- name: spare_add
SELECT * FROM spare_add(%(id)s, %(project_id)s, %(node_id)s, %(owner)s, %(lease)s,
                        %(avoid)s::int[])

-- name: spare_claim
-- Spares being built or retired that nobody holds (or whose holder died): leased to us.
UPDATE spares s SET lease_owner = %(owner)s,
    lease_expires_at = now() + make_interval(secs => %(lease)s)
WHERE s.id IN (
    SELECT id FROM spares
    WHERE status IN ('cloning', 'retiring') AND next_attempt_at <= now()
      AND (lease_expires_at IS NULL OR lease_expires_at < now())
    ORDER BY status = 'retiring' DESC, next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING s.id

-- name: spare_get
SELECT s.*, p.ram_mb, p.cores FROM spares s LEFT JOIN projects p ON p.id = s.project_id
WHERE s.id = %(id)s

-- name: spare_renew
UPDATE spares SET lease_expires_at = now() + make_interval(secs => %(lease)s)
WHERE id = ANY (%(ids)s::uuid[]) AND lease_owner = %(owner)s
RETURNING id

-- name: spare_release
UPDATE spares SET lease_owner = NULL, lease_expires_at = NULL
WHERE id = %(id)s AND lease_owner = %(owner)s

-- name: spare_release_all
UPDATE spares SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = %(owner)s

-- name: spare_set_step
UPDATE spares SET step = %(step)s, updated_at = now(),
    attempts = CASE WHEN step IS DISTINCT FROM %(step)s THEN 0 ELSE attempts END
WHERE id = %(id)s AND status = %(status)s AND lease_owner = %(owner)s
RETURNING id

-- name: spare_ready
-- The build's final compare-and-swap: from `cloning`, by its lease holder.
UPDATE spares
SET status = 'ready', step = NULL, attempts = 0, last_error = NULL, ready_at = now(),
    lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
WHERE id = %(id)s AND status = 'cloning' AND lease_owner = %(owner)s
RETURNING id

-- name: spare_retire
-- A build that keeps failing: destroy what it made and let a refill start afresh.
UPDATE spares SET status = 'retiring', step = 'destroy', attempts = 0,
    next_attempt_at = now(), updated_at = now()
WHERE id = %(id)s AND status = 'cloning' AND lease_owner = %(owner)s

-- name: spare_forget
-- The row goes once its container is gone (or was never ours).
DELETE FROM spares
WHERE id = %(id)s AND status IN ('cloning', 'retiring') AND lease_owner = %(owner)s
RETURNING id

-- name: spare_retry_later
UPDATE spares
SET attempts = attempts + 1, last_error = %(error)s,
    next_attempt_at = now() + make_interval(secs => %(delay)s), updated_at = now()
WHERE id = %(id)s AND lease_owner = %(owner)s
RETURNING attempts

-- name: spare_pending
SELECT count(*) FROM spares WHERE status IN ('cloning', 'retiring')

-- name: spare_list
SELECT s.id, s.project_id, s.node_id, n.name AS node, s.vmid, s.template_vmid, s.status,
       s.step, s.attempts, s.last_error, s.created_at, s.ready_at
FROM spares s JOIN nodes n ON n.id = s.node_id
WHERE s.project_id = %(project_id)s
ORDER BY n.name, s.vmid

-- name: spare_counts_by_project
SELECT count(*) FILTER (WHERE status = 'ready') AS ready,
       count(*) FILTER (WHERE status = 'cloning') AS building,
       count(*) FILTER (WHERE status = 'retiring') AS retiring
FROM spares WHERE project_id = %(project_id)s
