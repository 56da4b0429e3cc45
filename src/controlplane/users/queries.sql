-- name: user_insert
INSERT INTO users (id, email, password_hash)
VALUES (%(id)s, %(email)s, %(password_hash)s)
RETURNING id, email, email_verified_at IS NOT NULL AS email_verified, disabled_at,
          last_login_at, created_at, updated_at

-- name: user_get
SELECT id, email, email_verified_at IS NOT NULL AS email_verified, disabled_at, last_login_at,
       created_at, updated_at
FROM users WHERE id = %(id)s

-- name: user_for_login
SELECT id, email, password_hash, token_version, disabled_at FROM users WHERE email = %(email)s

-- name: user_for_password_change
SELECT id, email, password_hash, token_version FROM users WHERE id = %(id)s

-- name: user_for_token
-- The one query behind every authenticated user request (primary key lookup).
SELECT id, email, email_verified_at IS NOT NULL AS email_verified, token_version, disabled_at,
       last_login_at, created_at, updated_at
FROM users WHERE id = %(id)s

-- name: user_logged_in
UPDATE users SET last_login_at = now() WHERE id = %(id)s

-- name: user_rehash
-- Upgrade a hash made with older cost settings, unless the password changed meanwhile.
UPDATE users SET password_hash = %(new_hash)s
WHERE id = %(id)s AND password_hash = %(old_hash)s

-- name: user_set_password
-- Compare-and-swap on the token version: a concurrent change of the same password loses.
UPDATE users
SET password_hash = %(password_hash)s, token_version = token_version + 1, updated_at = now()
WHERE id = %(id)s AND token_version = %(version)s AND disabled_at IS NULL
RETURNING id, email, token_version

-- name: user_disable
UPDATE users
SET disabled_at = now(), token_version = token_version + 1, updated_at = now()
WHERE id = %(id)s AND disabled_at IS NULL
RETURNING id, email, email_verified_at IS NOT NULL AS email_verified, disabled_at,
          last_login_at, created_at, updated_at

-- name: user_enable
UPDATE users SET disabled_at = NULL, updated_at = now()
WHERE id = %(id)s AND disabled_at IS NOT NULL
RETURNING id, email, email_verified_at IS NOT NULL AS email_verified, disabled_at,
          last_login_at, created_at, updated_at

-- name: user_page
WITH filtered AS (
    SELECT id, email, email_verified_at IS NOT NULL AS email_verified, disabled_at,
           last_login_at, created_at, updated_at
    FROM users
    WHERE (%(email)s::text IS NULL OR strpos(email, %(email)s) > 0)
      AND (%(status)s::text IS NULL
           OR (%(status)s = 'active' AND disabled_at IS NULL)
           OR (%(status)s = 'disabled' AND disabled_at IS NOT NULL))
      AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
)
SELECT (SELECT count(*) FROM filtered) AS total,
       coalesce((SELECT json_agg(p) FROM (
           SELECT * FROM filtered ORDER BY created_at DESC, id DESC
           LIMIT %(limit)s OFFSET %(offset)s) p), '[]'::json) AS items
