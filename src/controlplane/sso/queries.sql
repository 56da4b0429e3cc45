-- name: key_insert_if_none
-- Replicas racing to make the first key: one insert wins, the others do nothing.
INSERT INTO sso_keys (kid, private_key_sealed, public_jwk, active)
VALUES (%(kid)s, %(private_key_sealed)s, %(public_jwk)s, true)
ON CONFLICT (active) WHERE active DO NOTHING

-- name: key_active
SELECT kid, private_key_sealed, public_jwk FROM sso_keys WHERE active

-- name: key_public_all
SELECT kid, public_jwk FROM sso_keys ORDER BY active DESC, created_at DESC

-- name: redemption_insert
-- Each token id once: a second redemption inserts nothing.
INSERT INTO sso_redemptions (jti, tenant_id, user_id, expires_at)
VALUES (%(jti)s, %(tenant_id)s, %(user_id)s, %(expires_at)s)
ON CONFLICT (jti) DO NOTHING
RETURNING jti

-- name: redemption_prune
-- Tokens past expiry can no longer verify, so their redemptions need not be kept.
DELETE FROM sso_redemptions
WHERE jti IN (SELECT jti FROM sso_redemptions WHERE expires_at < now() LIMIT 500)
