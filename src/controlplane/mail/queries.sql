-- name: outbox_insert
INSERT INTO mail_outbox (kind, recipient, subject, body)
VALUES (%(kind)s, %(recipient)s, %(subject)s, %(body)s)
RETURNING id

-- name: outbox_claim
-- Claim due mails: SKIP LOCKED lets several senders (replicas) share the outbox, and the
-- claim pushes next_attempt_at forward as a lease: a sender killed mid-send leaves the
-- mail to be claimed again once the lease runs out (sent at least once).
UPDATE mail_outbox m
SET attempts = m.attempts + 1, next_attempt_at = now() + make_interval(secs => %(lease)s)
FROM (SELECT id FROM mail_outbox
      WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
      ORDER BY next_attempt_at, id
      LIMIT %(limit)s
      FOR UPDATE SKIP LOCKED) due
WHERE m.id = due.id
RETURNING m.id, m.kind, m.recipient, m.subject, m.body, m.attempts

-- name: outbox_sent
-- The body (with its one-time link) is not kept once the mail is out.
UPDATE mail_outbox SET sent_at = now(), body = '', last_error = NULL WHERE id = %(id)s

-- name: outbox_retry
UPDATE mail_outbox
SET next_attempt_at = now() + make_interval(secs => %(delay)s), last_error = %(error)s
WHERE id = %(id)s

-- name: outbox_failed
UPDATE mail_outbox SET failed_at = now(), body = '', last_error = %(error)s WHERE id = %(id)s

-- name: token_insert
INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at)
VALUES (%(token_hash)s, %(user_id)s, %(purpose)s, now() + %(ttl)s)

-- name: token_peek
-- The token's user, if the token is live (not consumed: see token_use).
SELECT u.id, u.email, u.token_version, u.disabled_at
FROM user_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = %(token_hash)s AND t.purpose = %(purpose)s
  AND t.used_at IS NULL AND t.expires_at > now()

-- name: token_use
-- Single use: the compare-and-swap that consumes a token; older tokens of the same user
-- and purpose die with it.
WITH used AS (
    UPDATE user_tokens SET used_at = now()
    WHERE token_hash = %(token_hash)s AND purpose = %(purpose)s
      AND used_at IS NULL AND expires_at > now()
    RETURNING user_id
), others AS (
    UPDATE user_tokens SET used_at = now()
    WHERE user_id = (SELECT user_id FROM used) AND purpose = %(purpose)s AND used_at IS NULL
)
SELECT user_id FROM used

-- name: token_prune
DELETE FROM user_tokens WHERE expires_at < now() - interval '1 day'

-- name: user_verify_email
UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now()
WHERE id = %(id)s AND disabled_at IS NULL
RETURNING id, email, email_verified_at IS NOT NULL AS email_verified, disabled_at,
          last_login_at, created_at, updated_at

-- name: user_reset_password
-- A new password ends every session: the token version moves on (access tokens) and every
-- refresh token is revoked; following the mailed link also proves the address.
WITH u AS (
    UPDATE users
    SET password_hash = %(password_hash)s, token_version = token_version + 1,
        email_verified_at = coalesce(email_verified_at, now()), updated_at = now()
    WHERE id = %(id)s AND disabled_at IS NULL
    RETURNING id
)
UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'password_reset'
WHERE user_id = (SELECT id FROM u) AND revoked_at IS NULL

-- name: user_by_email
SELECT id, email, email_verified_at IS NOT NULL AS email_verified, disabled_at
FROM users WHERE email = %(email)s

-- name: outbox_recent
SELECT id FROM mail_outbox
WHERE recipient = %(recipient)s AND kind = %(kind)s AND created_at > now() - interval '1 hour'
LIMIT 1
