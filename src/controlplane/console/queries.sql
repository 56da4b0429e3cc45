-- name: ticket_insert
INSERT INTO console_tickets (id, token_hash, tenant_id, actor, user_id, client_ip, expires_at)
VALUES (%(id)s, %(token_hash)s, %(tenant_id)s, %(actor)s, %(user_id)s, %(client_ip)s,
        now() + make_interval(secs => %(ttl)s))
RETURNING id, expires_at

-- name: ticket_consume
-- The compare-and-swap that makes a ticket single-use: of two connections presenting it,
-- exactly one gets the row back.
UPDATE console_tickets SET used_at = now()
WHERE token_hash = %(token_hash)s AND used_at IS NULL AND expires_at > now()
RETURNING id, tenant_id, actor, user_id, client_ip

-- name: ticket_state
-- Why a ticket was refused (after ticket_consume returned nothing): used, or expired.
SELECT used_at IS NOT NULL AS used FROM console_tickets WHERE token_hash = %(token_hash)s

-- name: tickets_prune
DELETE FROM console_tickets t
WHERE t.expires_at < now() - interval '1 hour'
  AND NOT EXISTS (SELECT 1 FROM console_sessions s WHERE s.ticket_id = t.id
                  AND s.ended_at IS NULL)
  AND (t.used_at IS NULL OR t.used_at < now() - interval '90 days')

-- name: console_tenant
-- The tenant a console opens into, with what the bridge needs: the node's SSH access.
-- With a user, only that user's tenant and only while the user is not disabled.
SELECT t.id, t.status, t.vmid, t.subdomain, t.owner_user_id, t.node_id,
       (n.ssh_private_key_sealed IS NOT NULL AND n.ssh_host_key IS NOT NULL) AS has_ssh
FROM tenants t LEFT JOIN nodes n ON n.id = t.node_id
WHERE t.id = %(tenant_id)s AND t.status <> 'deleted'
  AND (%(user_id)s::uuid IS NULL OR (
        t.owner_user_id = %(user_id)s::uuid
        AND EXISTS (SELECT 1 FROM users u WHERE u.id = %(user_id)s::uuid
                    AND u.disabled_at IS NULL)))

-- name: lock_tenant_consoles
SELECT pg_advisory_xact_lock(hashtextextended('console-tenant:' || %(tenant_id)s::text, 0))

-- name: lock_user_consoles
SELECT pg_advisory_xact_lock(hashtextextended('console-user:' || %(user_id)s::text, 0))

-- name: open_sessions
-- Sessions still alive (renewed within their lease) on a tenant, and of a user.
SELECT (SELECT count(*) FROM console_sessions
        WHERE tenant_id = %(tenant_id)s AND ended_at IS NULL AND alive_until > now())
           AS on_tenant,
       (SELECT count(*) FROM console_sessions
        WHERE %(user_id)s::uuid IS NOT NULL AND user_id = %(user_id)s::uuid
          AND ended_at IS NULL AND alive_until > now()) AS of_user

-- name: session_insert
INSERT INTO console_sessions (id, ticket_id, tenant_id, actor, user_id, client_ip, alive_until)
VALUES (%(id)s, %(ticket_id)s, %(tenant_id)s, %(actor)s, %(user_id)s, %(client_ip)s,
        now() + make_interval(secs => %(lease)s))
RETURNING *

-- name: sessions_close_dead
-- Sessions whose process died without closing them (their lease ran out).
UPDATE console_sessions SET ended_at = alive_until, end_reason = 'lost'
WHERE tenant_id = %(tenant_id)s AND ended_at IS NULL AND alive_until <= now()
RETURNING id, actor, client_ip, started_at, ended_at, bytes_in, bytes_out

-- name: session_renew
-- Renews the lease while the session is still allowed: the tenant active and, for a user,
-- still theirs and the user not disabled. No row back: the session must end.
UPDATE console_sessions s
SET alive_until = now() + make_interval(secs => %(lease)s),
    bytes_in = %(bytes_in)s, bytes_out = %(bytes_out)s
FROM tenants t
WHERE s.id = %(id)s AND s.ended_at IS NULL AND t.id = s.tenant_id AND t.status = 'active'
  AND (s.user_id IS NULL OR (
        t.owner_user_id = s.user_id
        AND EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id AND u.disabled_at IS NULL)))
RETURNING s.id

-- name: session_end
UPDATE console_sessions
SET ended_at = now(), end_reason = %(reason)s, bytes_in = %(bytes_in)s,
    bytes_out = %(bytes_out)s
WHERE id = %(id)s AND ended_at IS NULL
RETURNING started_at, ended_at

-- name: session_list
SELECT id, actor, client_ip, started_at, ended_at, end_reason, bytes_in, bytes_out
FROM console_sessions WHERE tenant_id = %(tenant_id)s
ORDER BY started_at DESC LIMIT %(limit)s
