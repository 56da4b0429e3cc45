-- name: settings_all
SELECT key, value, updated_at FROM system_settings WHERE key = ANY(%(keys)s::text[])

-- name: setting_get
SELECT value FROM system_settings WHERE key = %(key)s

-- name: settings_lock
-- Serialises writers so the version check and the writes are one compare-and-swap.
SELECT pg_advisory_xact_lock(hashtext('controlplane.system_settings'))

-- name: setting_upsert
INSERT INTO system_settings (key, value, updated_at)
VALUES (%(key)s, %(value)s, now())
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()
WHERE system_settings.value IS DISTINCT FROM excluded.value

-- name: setting_delete
DELETE FROM system_settings WHERE key = %(key)s
