-- name: refresh_insert
INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, token_version, expires_at)
VALUES (%(id)s, %(user_id)s, %(family_id)s, %(token_hash)s, %(token_version)s,
        now() + %(ttl)s)
RETURNING expires_at

-- name: refresh_rotate
-- The compare-and-swap of a rotation: only one caller can mark a live token used.
UPDATE refresh_tokens rt
SET used_at = now()
FROM users u
WHERE rt.token_hash = %(token_hash)s
  AND rt.used_at IS NULL
  AND rt.revoked_at IS NULL
  AND rt.expires_at > now()
  AND u.id = rt.user_id
  AND u.disabled_at IS NULL
  AND u.token_version = rt.token_version
RETURNING rt.id, rt.user_id, rt.family_id, u.email, u.token_version

-- name: refresh_regrant
-- A token rotated less than the grace period ago may rotate again (two tabs refreshing
-- at once); the row lock orders this against a concurrent logout of the same family.
SELECT rt.id, rt.user_id, rt.family_id, u.email, u.token_version
FROM refresh_tokens rt
JOIN users u ON u.id = rt.user_id
WHERE rt.token_hash = %(token_hash)s
  AND rt.used_at > now() - %(grace)s
  AND rt.revoked_at IS NULL
  AND rt.expires_at > now()
  AND u.disabled_at IS NULL
  AND u.token_version = rt.token_version
FOR UPDATE OF rt

-- name: refresh_lookup
SELECT id, user_id, family_id, used_at, revoked_at, expires_at <= now() AS expired
FROM refresh_tokens
WHERE token_hash = %(token_hash)s

-- name: refresh_revoke_family
UPDATE refresh_tokens
SET revoked_at = now(), revoked_reason = %(reason)s
WHERE family_id = %(family_id)s AND revoked_at IS NULL

-- name: refresh_revoke_family_of
-- Log out: the session (family) of the presented token ends.
UPDATE refresh_tokens
SET revoked_at = now(), revoked_reason = 'logout'
WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = %(token_hash)s)
  AND revoked_at IS NULL
RETURNING user_id, family_id

-- name: refresh_revoke_user
UPDATE refresh_tokens
SET revoked_at = now(), revoked_reason = %(reason)s
WHERE user_id = %(user_id)s AND revoked_at IS NULL

-- name: refresh_prune
-- Expired tokens are useless: drop a bounded batch of those a day past expiry.
DELETE FROM refresh_tokens
WHERE id IN (SELECT id FROM refresh_tokens WHERE expires_at < now() - interval '1 day'
             LIMIT 500)

-- name: user_end_sessions
-- Log out everywhere: every access token dies with the version bump, every refresh token
-- with the revocation below (in the same transaction).
UPDATE users SET token_version = token_version + 1, updated_at = now()
WHERE id = %(user_id)s
RETURNING token_version

-- name: login_failures_recent
SELECT count(*) FROM login_failures
WHERE email = %(email)s AND at > now() - make_interval(secs => %(window)s)

-- name: login_failure_record
INSERT INTO login_failures (email) VALUES (%(email)s)

-- name: login_failures_prune
-- Failures older than any window are useless: drop a bounded batch.
DELETE FROM login_failures
WHERE id IN (SELECT id FROM login_failures WHERE at < now() - interval '1 day' LIMIT 500)
