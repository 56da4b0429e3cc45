-- ===== admin users and passkeys ==========================================================

-- name: passkey_exists
SELECT EXISTS (SELECT 1 FROM admin_passkeys) AS any

-- name: setup_lock
-- Serialises first-passkey registrations: the check "no passkey yet" and the insert are one step.
SELECT pg_advisory_xact_lock(hashtext('controlplane.admin.setup'))

-- name: admin_user_insert
INSERT INTO admin_users (id, name, user_handle)
VALUES (%(id)s, %(name)s, %(user_handle)s)
RETURNING *

-- name: admin_user_get
SELECT * FROM admin_users WHERE id = %(id)s

-- name: admin_user_lock
SELECT id FROM admin_users WHERE id = %(id)s FOR UPDATE

-- name: passkey_insert
INSERT INTO admin_passkeys (id, admin_user_id, name, credential_id, public_key, sign_count,
                            transports, aaguid, backed_up)
VALUES (%(id)s, %(admin_user_id)s, %(name)s, %(credential_id)s, %(public_key)s, %(sign_count)s,
        %(transports)s, %(aaguid)s, %(backed_up)s)
RETURNING id, admin_user_id, name, created_at

-- name: passkey_by_credential
SELECT k.*, u.name AS user_name, u.user_handle
FROM admin_passkeys k JOIN admin_users u ON u.id = k.admin_user_id
WHERE k.credential_id = %(credential_id)s

-- name: passkey_credentials_of_user
SELECT credential_id, transports FROM admin_passkeys WHERE admin_user_id = %(user_id)s

-- name: passkey_list
SELECT k.id, k.name, k.admin_user_id, u.name AS user_name, k.created_at, k.last_used_at,
       k.backed_up, k.sign_count
FROM admin_passkeys k JOIN admin_users u ON u.id = k.admin_user_id
ORDER BY u.name, k.created_at, k.id

-- name: passkey_get
SELECT id, name, admin_user_id FROM admin_passkeys WHERE id = %(id)s

-- name: passkey_use
-- Compare-and-swap on the signature counter: a second use racing this one loses.
UPDATE admin_passkeys SET sign_count = %(new)s, last_used_at = now()
WHERE id = %(id)s AND sign_count = %(old)s
RETURNING id

-- name: passkey_rename
UPDATE admin_passkeys SET name = %(name)s WHERE id = %(id)s
RETURNING id, name, admin_user_id

-- name: passkey_count_of_user
SELECT count(*) FROM admin_passkeys WHERE admin_user_id = %(user_id)s

-- name: passkey_delete
DELETE FROM admin_passkeys WHERE id = %(id)s RETURNING id, name, admin_user_id

-- ===== WebAuthn challenges ================================================================

-- name: challenge_insert
INSERT INTO admin_challenges (id, purpose, challenge, admin_user_id, session_id, user_name,
                              user_handle, passkey_name, client_ip, expires_at)
VALUES (%(id)s, %(purpose)s, %(challenge)s, %(admin_user_id)s, %(session_id)s, %(user_name)s,
        %(user_handle)s, %(passkey_name)s, %(client_ip)s, now() + make_interval(secs => %(ttl)s))

-- name: challenge_take
-- A challenge is used at most once, whatever the outcome.
DELETE FROM admin_challenges
WHERE id = %(id)s AND purpose = %(purpose)s
RETURNING *, expires_at > now() AS fresh

-- ===== sessions ===========================================================================

-- name: session_insert
INSERT INTO admin_sessions (id, token_hash, admin_user_id, passkey_id, csrf_token, client_ip,
                            user_agent, expires_at)
VALUES (%(id)s, %(token_hash)s, %(admin_user_id)s, %(passkey_id)s, %(csrf_token)s,
        %(client_ip)s, %(user_agent)s, now() + make_interval(secs => %(ttl)s))
RETURNING id, expires_at

-- name: session_check
-- Validates a session and (unless it is a background poll) counts this request as activity.
UPDATE admin_sessions s
SET last_seen_at = CASE WHEN %(touch)s THEN now() ELSE s.last_seen_at END
FROM admin_users u
WHERE s.token_hash = %(token_hash)s
  AND u.id = s.admin_user_id
  AND s.revoked_at IS NULL
  AND s.expires_at > now()
  AND s.last_seen_at > now() - make_interval(secs => %(idle)s)
RETURNING s.id, s.admin_user_id, u.name AS user_name, s.passkey_id, s.csrf_token, s.expires_at

-- name: session_revoke
UPDATE admin_sessions SET revoked_at = now(), revoked_reason = %(reason)s
WHERE id = %(id)s AND revoked_at IS NULL
RETURNING id

-- name: sessions_revoke_for_passkey
UPDATE admin_sessions SET revoked_at = now(), revoked_reason = %(reason)s
WHERE passkey_id = %(passkey_id)s AND revoked_at IS NULL
RETURNING id

-- name: housekeeping
-- Old rows nobody needs any more; run now and then from the login path.
WITH c AS (DELETE FROM admin_challenges WHERE expires_at < now() - interval '1 hour'),
     a AS (DELETE FROM admin_login_attempts WHERE at < now() - interval '2 days')
DELETE FROM admin_sessions
WHERE (expires_at < now() - interval '30 days')
   OR (revoked_at IS NOT NULL AND revoked_at < now() - interval '30 days')

-- ===== login rate limit ===================================================================

-- name: attempt_start
-- Records the start of a login ceremony unless this address is over either limit.
INSERT INTO admin_login_attempts (client_ip, outcome)
SELECT %(ip)s, 'started'
WHERE (SELECT count(*) FROM admin_login_attempts
       WHERE client_ip = %(ip)s AND outcome = 'failed'
         AND at > now() - make_interval(secs => %(window)s)) < %(max_failures)s
  AND (SELECT count(*) FROM admin_login_attempts
       WHERE client_ip = %(ip)s AND outcome = 'started'
         AND at > now() - make_interval(secs => %(window)s)) < %(max_started)s
RETURNING id

-- name: attempt_failures
SELECT count(*) AS failures,
       greatest(1, ceil(extract(epoch FROM
           min(at) + make_interval(secs => %(window)s) - now())))::int AS retry_after
FROM admin_login_attempts
WHERE client_ip = %(ip)s AND outcome = 'failed'
  AND at > now() - make_interval(secs => %(window)s)

-- name: attempt_retry_after
SELECT greatest(1, ceil(extract(epoch FROM
           min(at) + make_interval(secs => %(window)s) - now())))::int AS retry_after
FROM admin_login_attempts
WHERE client_ip = %(ip)s AND at > now() - make_interval(secs => %(window)s)
  AND outcome IN ('failed', 'started')

-- name: attempt_record
INSERT INTO admin_login_attempts (client_ip, outcome) VALUES (%(ip)s, %(outcome)s)

-- ===== dashboard reads ====================================================================

-- name: overview_tenant_counts
SELECT status, count(*) AS n FROM tenants GROUP BY status

-- name: overview_nodes
SELECT id, name, status, total_ram_mb, allocated_ram_mb, mem_used_mb, last_error, last_seen,
       poll_failures, floor(node_ram_capacity_mb(total_ram_mb))::int AS capacity_mb
FROM nodes ORDER BY name

-- name: node_names
SELECT id, name FROM nodes ORDER BY name

-- name: project_names
SELECT id, name, slug, is_default FROM projects ORDER BY name

-- name: node_live_tenant_counts
SELECT node_id, count(*) AS n FROM tenants
WHERE status <> 'deleted' AND node_id IS NOT NULL GROUP BY node_id

-- name: project_live_tenant_counts
SELECT project_id, count(*) AS n FROM tenants
WHERE status <> 'deleted' AND project_id IS NOT NULL GROUP BY project_id

-- name: admin_names
SELECT 'admin:' || id::text AS actor, name FROM admin_users
