-- name: project_insert
INSERT INTO projects (id, name, slug, template_vmid, ram_mb, cores, disk_gb, app_port,
                      health_path, bootstrap_commands, is_default, self_service,
                      app_service, app_actions, backup_storage, keep_backups_days,
                      on_container_stopped, warm_pool_size)
VALUES (%(id)s, %(name)s, %(slug)s, %(template_vmid)s, %(ram_mb)s, %(cores)s, %(disk_gb)s,
        %(app_port)s, %(health_path)s, %(bootstrap_commands)s, %(is_default)s,
        %(self_service)s, %(app_service)s, %(app_actions)s, %(backup_storage)s,
        %(keep_backups_days)s, %(on_container_stopped)s, %(warm_pool_size)s)
RETURNING *

-- name: project_get
SELECT * FROM projects WHERE id = %(id)s

-- name: project_by_slug
SELECT * FROM projects WHERE slug = %(slug)s

-- name: project_default
SELECT * FROM projects WHERE is_default

-- name: project_clear_default
UPDATE projects SET is_default = false, updated_at = now()
WHERE is_default AND id <> %(id)s

-- name: project_page
WITH filtered AS (SELECT * FROM projects)
SELECT (SELECT count(*) FROM filtered) AS total,
       coalesce((SELECT json_agg(p) FROM (
           SELECT * FROM filtered ORDER BY name, id LIMIT %(limit)s OFFSET %(offset)s) p),
           '[]'::json) AS items

-- name: project_update
UPDATE projects SET
    name = coalesce(%(name)s, name),
    slug = coalesce(%(slug)s, slug),
    template_vmid = coalesce(%(template_vmid)s, template_vmid),
    ram_mb = coalesce(%(ram_mb)s, ram_mb),
    cores = coalesce(%(cores)s, cores),
    disk_gb = coalesce(%(disk_gb)s, disk_gb),
    app_port = coalesce(%(app_port)s, app_port),
    health_path = CASE WHEN %(set_health_path)s THEN %(health_path)s ELSE health_path END,
    bootstrap_commands = coalesce(%(bootstrap_commands)s, bootstrap_commands),
    is_default = coalesce(%(is_default)s, is_default),
    self_service = coalesce(%(self_service)s, self_service),
    app_service = CASE WHEN %(set_app_service)s THEN %(app_service)s ELSE app_service END,
    app_actions = coalesce(%(app_actions)s, app_actions),
    backup_storage = coalesce(%(backup_storage)s, backup_storage),
    keep_backups_days = coalesce(%(keep_backups_days)s, keep_backups_days),
    on_container_stopped = coalesce(%(on_container_stopped)s, on_container_stopped),
    warm_pool_size = coalesce(%(warm_pool_size)s, warm_pool_size),
    updated_at = now()
WHERE id = %(id)s
RETURNING *

-- name: project_lock
SELECT id FROM projects WHERE id = %(id)s FOR UPDATE

-- name: project_delete_if_unused
-- Run after project_lock in the same transaction, so no tenant insert for it is in flight.
DELETE FROM projects p
WHERE p.id = %(id)s
  AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.project_id = p.id AND t.status <> 'deleted')
RETURNING id

-- name: project_live_tenants
SELECT count(*) AS n FROM tenants WHERE project_id = %(id)s AND status <> 'deleted'

-- name: project_self_service_by_slug
SELECT * FROM projects WHERE slug = %(slug)s AND self_service

-- name: project_self_service_default
SELECT * FROM projects WHERE is_default AND self_service

-- name: project_self_service_list
SELECT id, slug, name, ram_mb, cores, disk_gb, is_default
FROM projects WHERE self_service ORDER BY is_default DESC, name, id
