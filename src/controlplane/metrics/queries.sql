-- name: tenant_counts
-- One pass over tenants per scrape: how many are in each status, how many wait for a
-- worker now (needs work, due, and no live lease), how many back off before a retry, and
-- how many are still held by a lease that ran out (its worker died or hangs).
SELECT status,
       count(*) AS tenants,
       count(*) FILTER (
           WHERE (status IN ('provisioning', 'suspending', 'resuming', 'deleting') OR config_pending)
             AND next_attempt_at <= now()
             AND (lease_expires_at IS NULL OR lease_expires_at < now())) AS waiting,
       count(*) FILTER (
           WHERE (status IN ('provisioning', 'suspending', 'resuming', 'deleting') OR config_pending)
             AND next_attempt_at > now()) AS backing_off,
       count(*) FILTER (
           WHERE lease_owner IS NOT NULL AND lease_expires_at < now()) AS lease_expired
FROM tenants
GROUP BY status
