-- name: node_insert
INSERT INTO nodes (id, name, api_url, pve_node, token_id, token_secret_sealed, tls_fingerprint,
                   verify_tls, total_ram_mb, vmid_range_start, vmid_range_end, ssh_host, ssh_port,
                   ssh_user, ssh_private_key_sealed, ssh_host_key, status, last_seen, pve_version,
                   mem_used_mb, templates)
VALUES (%(id)s, %(name)s, %(api_url)s, %(pve_node)s, %(token_id)s, %(token_secret_sealed)s,
        %(tls_fingerprint)s, %(verify_tls)s, %(total_ram_mb)s, %(vmid_range_start)s,
        %(vmid_range_end)s, %(ssh_host)s, %(ssh_port)s, %(ssh_user)s, %(ssh_private_key_sealed)s,
        %(ssh_host_key)s, %(status)s, %(last_seen)s, %(pve_version)s, %(mem_used_mb)s,
        %(templates)s)
RETURNING *

-- name: node_get
SELECT * FROM nodes WHERE id = %(id)s

-- name: node_page
WITH filtered AS (
    SELECT * FROM nodes WHERE (%(status)s::text IS NULL OR status = %(status)s)
)
SELECT (SELECT count(*) FROM filtered) AS total,
       coalesce((SELECT json_agg(p) FROM (
           SELECT * FROM filtered ORDER BY name LIMIT %(limit)s OFFSET %(offset)s) p),
           '[]'::json) AS items

-- name: node_update
-- Columns passed as NULL keep their value.
UPDATE nodes SET
    name = coalesce(%(name)s, name),
    api_url = coalesce(%(api_url)s, api_url),
    pve_node = coalesce(%(pve_node)s, pve_node),
    token_id = coalesce(%(token_id)s, token_id),
    token_secret_sealed = coalesce(%(token_secret_sealed)s, token_secret_sealed),
    tls_fingerprint = CASE WHEN %(set_fingerprint)s THEN %(tls_fingerprint)s ELSE tls_fingerprint END,
    verify_tls = coalesce(%(verify_tls)s, verify_tls),
    total_ram_mb = coalesce(%(total_ram_mb)s, total_ram_mb),
    vmid_range_start = coalesce(%(vmid_range_start)s, vmid_range_start),
    vmid_range_end = coalesce(%(vmid_range_end)s, vmid_range_end),
    ssh_host = coalesce(%(ssh_host)s, ssh_host),
    ssh_port = coalesce(%(ssh_port)s, ssh_port),
    ssh_user = coalesce(%(ssh_user)s, ssh_user),
    ssh_private_key_sealed = coalesce(%(ssh_private_key_sealed)s, ssh_private_key_sealed),
    ssh_host_key = coalesce(%(ssh_host_key)s, ssh_host_key),
    updated_at = now()
WHERE id = %(id)s
RETURNING *

-- name: node_live_tenants
SELECT count(*) AS n FROM tenants WHERE node_id = %(id)s AND status <> 'deleted'

-- name: node_lock
SELECT id FROM nodes WHERE id = %(id)s FOR UPDATE

-- name: node_delete_if_empty
-- Run after node_lock in the same transaction, so no placement on the node is in flight.
DELETE FROM nodes n
WHERE n.id = %(id)s
  AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.node_id = n.id AND t.status <> 'deleted')
RETURNING id

-- name: node_claim_poll
-- One replica polls a node per period: claiming is a compare-and-swap on polled_at.
UPDATE nodes SET polled_at = now()
WHERE id IN (
    SELECT id FROM nodes
    WHERE polled_at IS NULL OR polled_at < now() - make_interval(secs => %(period)s)
    FOR UPDATE SKIP LOCKED)
RETURNING *

-- name: node_poll_ok
UPDATE nodes SET status = 'online', last_seen = now(), poll_failures = 0, last_error = NULL,
    presented_fingerprint = NULL,
    pve_version = %(pve_version)s, mem_used_mb = %(mem_used_mb)s, cpu = %(cpu)s,
    cpu_count = coalesce(%(cpu_count)s, cpu_count), uptime_s = %(uptime_s)s, templates = %(templates)s,
    total_ram_mb = CASE WHEN %(fill_total)s THEN %(total_ram_mb)s ELSE total_ram_mb END
WHERE id = %(id)s

-- name: node_poll_failed
UPDATE nodes SET poll_failures = poll_failures + 1, last_error = %(error)s,
    status = CASE WHEN poll_failures + 1 >= %(offline_after)s THEN 'offline' ELSE status END
WHERE id = %(id)s
RETURNING status, poll_failures

-- name: node_set_maintenance
-- On: placement (placement_candidates, reserve_on_node) skips the node from the commit on;
-- `maintenance_since` keeps the first time it was switched on.
UPDATE nodes SET
    maintenance = %(enabled)s,
    maintenance_reason = CASE WHEN %(enabled)s THEN %(reason)s END,
    maintenance_since = CASE WHEN NOT %(enabled)s THEN NULL
                             WHEN maintenance THEN maintenance_since ELSE now() END,
    updated_at = now()
WHERE id = %(id)s
RETURNING *

-- name: node_certificate_changed
-- A failed poll like any other, plus what the node presents instead of its pin.
UPDATE nodes SET poll_failures = poll_failures + 1, last_error = %(error)s,
    presented_fingerprint = %(presented)s,
    status = CASE WHEN poll_failures + 1 >= %(offline_after)s THEN 'offline' ELSE status END
WHERE id = %(id)s
RETURNING status, poll_failures

-- name: node_repin
-- Accept the certificate the node presents, only if it is still the one the operator saw
-- (the body repeats it). updated_at moves, so the registry builds a client on the new pin.
UPDATE nodes SET tls_fingerprint = presented_fingerprint, presented_fingerprint = NULL,
    poll_failures = 0, last_error = NULL, polled_at = NULL, updated_at = now()
WHERE id = %(id)s AND presented_fingerprint = %(fingerprint)s
RETURNING *
