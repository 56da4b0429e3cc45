-- name: desired_routes
-- Tenants that have a route: running (or about to run) ones and suspended ones.
SELECT t.id, t.subdomain, t.status, t.ip_address, p.app_port
FROM tenants t
JOIN projects p ON p.id = t.project_id
WHERE t.status IN ('active', 'suspended', 'suspending', 'resuming')
  AND t.ip_address IS NOT NULL
ORDER BY t.created_at, t.id

-- name: live_subdomain
-- On-demand TLS: is this subdomain a live tenant's? (The same statuses that have a route.)
SELECT EXISTS (
    SELECT 1 FROM tenants
    WHERE subdomain = %(subdomain)s
      AND status IN ('active', 'suspended', 'suspending', 'resuming')
) AS live

-- name: provisioning_tenants
SELECT id FROM tenants WHERE status = 'provisioning'
