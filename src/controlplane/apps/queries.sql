-- name: app_tenant
-- The tenant with its project's app and the health poller's last answer; with a user,
-- only that user's tenant.
SELECT t.id, t.status, t.vmid, t.node_id, t.health, t.observed_at,
       p.app_service, coalesce(p.app_actions, '[]'::jsonb) AS app_actions
FROM tenants t LEFT JOIN projects p ON p.id = t.project_id
WHERE t.id = %(tenant_id)s AND t.status <> 'deleted'
  AND (%(user_id)s::uuid IS NULL OR t.owner_user_id = %(user_id)s::uuid)

-- name: runs_fail_stale
-- A run still `running` long after its timeout was cut off by a crash: it failed.
UPDATE app_runs SET status = 'failed', error = 'interrupted (the control plane restarted)',
                    finished_at = now()
WHERE tenant_id = %(tenant_id)s AND status = 'running'
  AND started_at < now() - make_interval(secs => %(stale_after)s)

-- name: run_insert
INSERT INTO app_runs (id, tenant_id, kind, name, command, actor)
VALUES (%(id)s, %(tenant_id)s, %(kind)s, %(name)s, %(command)s, %(actor)s)
RETURNING *

-- name: run_finish
UPDATE app_runs
SET status = %(status)s, exit_status = %(exit_status)s, stdout = %(stdout)s,
    stderr = %(stderr)s, error = %(error)s, finished_at = now()
WHERE id = %(id)s AND status = 'running'
RETURNING *

-- name: runs_recent
SELECT * FROM app_runs WHERE tenant_id = %(tenant_id)s
ORDER BY started_at DESC, id LIMIT %(limit)s
