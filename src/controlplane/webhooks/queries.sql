-- name: webhook_insert
INSERT INTO webhook_endpoints (id, url, description, events, secret_sealed, enabled)
VALUES (%(id)s, %(url)s, %(description)s, %(events)s, %(secret_sealed)s, %(enabled)s)
RETURNING id, url, description, events, enabled, created_at, updated_at

-- name: webhook_get
SELECT id, url, description, events, enabled, created_at, updated_at
FROM webhook_endpoints WHERE id = %(id)s

-- name: webhook_page
WITH filtered AS (SELECT id, url, description, events, enabled, created_at, updated_at
                  FROM webhook_endpoints)
SELECT (SELECT count(*) FROM filtered) AS total,
       coalesce((SELECT json_agg(w) FROM (
           SELECT * FROM filtered ORDER BY created_at, id LIMIT %(limit)s OFFSET %(offset)s) w),
           '[]'::json) AS items

-- name: webhook_update
UPDATE webhook_endpoints SET
    url = coalesce(%(url)s, url),
    description = coalesce(%(description)s, description),
    events = coalesce(%(events)s, events),
    enabled = coalesce(%(enabled)s, enabled),
    updated_at = now()
WHERE id = %(id)s
RETURNING id, url, description, events, enabled, created_at, updated_at

-- name: webhook_delete
DELETE FROM webhook_endpoints WHERE id = %(id)s RETURNING id

-- name: delivery_page
WITH filtered AS (
    SELECT d.id, d.endpoint_id, d.event_id, e.type AS event_type,
           CASE WHEN d.delivered_at IS NOT NULL THEN 'delivered'
                WHEN d.failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END AS state,
           d.redelivery_of, d.attempts, d.created_at,
           CASE WHEN d.delivered_at IS NULL AND d.failed_at IS NULL
                THEN d.next_attempt_at END AS next_attempt_at,
           d.last_attempt_at, d.last_status, d.last_error, d.delivered_at, d.failed_at
    FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
    WHERE d.endpoint_id = %(endpoint_id)s
      AND (%(state)s::text IS NULL OR
           %(state)s = CASE WHEN d.delivered_at IS NOT NULL THEN 'delivered'
                            WHEN d.failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END)
)
SELECT (SELECT count(*) FROM filtered) AS total,
       coalesce((SELECT json_agg(x) FROM (
           SELECT * FROM filtered ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s) x),
           '[]'::json) AS items

-- name: delivery_get
SELECT d.id, d.endpoint_id, d.event_id, e.type AS event_type,
       CASE WHEN d.delivered_at IS NOT NULL THEN 'delivered'
            WHEN d.failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END AS state,
       d.redelivery_of, d.attempts, d.created_at,
       CASE WHEN d.delivered_at IS NULL AND d.failed_at IS NULL
            THEN d.next_attempt_at END AS next_attempt_at,
       d.last_attempt_at, d.last_status, d.last_error, d.delivered_at, d.failed_at
FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
WHERE d.id = %(id)s AND d.endpoint_id = %(endpoint_id)s

-- name: delivery_redeliver
-- A new delivery of the same event, only once the one it repeats has finished (delivered
-- or failed for good) and no other redelivery of it is still pending: the row lock on the
-- original serialises two redeliveries at once.
WITH original AS (
    SELECT id, endpoint_id, event_id FROM webhook_deliveries
    WHERE id = %(id)s AND endpoint_id = %(endpoint_id)s
      AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)
    FOR UPDATE
)
INSERT INTO webhook_deliveries (endpoint_id, event_id, redelivery_of)
SELECT o.endpoint_id, o.event_id, o.id FROM original o
WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                  WHERE p.redelivery_of = o.id AND p.delivered_at IS NULL
                    AND p.failed_at IS NULL)
RETURNING id

-- name: due_endpoints
-- Enabled endpoints with deliveries due, the longest waiting first, leaving out those this
-- process already keeps busy (a slow receiver does not take every slot).
SELECT d.endpoint_id, min(d.next_attempt_at) AS due
FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.enabled
WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= now()
  AND NOT (d.endpoint_id = ANY (%(busy)s::uuid[]))
GROUP BY d.endpoint_id
ORDER BY due
LIMIT %(limit)s

-- name: delivery_claim
-- Claim due deliveries of one endpoint: SKIP LOCKED lets replicas share the outbox, and
-- the claim pushes next_attempt_at forward as a lease, so a sender killed mid-request
-- leaves the delivery to be claimed again once the lease runs out (at least once).
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, last_attempt_at = now(),
    next_attempt_at = now() + make_interval(secs => %(lease)s)
FROM (SELECT d2.id FROM webhook_deliveries d2
      WHERE d2.endpoint_id = %(endpoint_id)s
        AND d2.delivered_at IS NULL AND d2.failed_at IS NULL AND d2.next_attempt_at <= now()
      ORDER BY d2.next_attempt_at, d2.id
      LIMIT %(limit)s
      FOR UPDATE SKIP LOCKED) due, webhook_endpoints w, webhook_events e
WHERE d.id = due.id AND w.id = d.endpoint_id AND w.enabled AND e.id = d.event_id
RETURNING d.id, d.attempts, d.endpoint_id, w.url, w.secret_sealed,
          e.id AS event_id, e.type AS event_type, e.created_at AS event_created_at,
          e.data AS event_data

-- name: delivery_delivered
UPDATE webhook_deliveries
SET delivered_at = now(), last_status = %(status)s, last_error = NULL
WHERE id = %(id)s AND delivered_at IS NULL

-- name: delivery_retry
UPDATE webhook_deliveries
SET next_attempt_at = now() + make_interval(secs => %(delay)s),
    last_status = %(status)s, last_error = %(error)s
WHERE id = %(id)s AND delivered_at IS NULL

-- name: delivery_failed
UPDATE webhook_deliveries
SET failed_at = now(), last_status = %(status)s, last_error = %(error)s
WHERE id = %(id)s AND delivered_at IS NULL

-- name: events_prune
-- Events older than the retention whose every delivery is finished (their deliveries go
-- with them).
DELETE FROM webhook_events e
WHERE e.created_at < now() - make_interval(days => %(days)s)
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                  WHERE d.event_id = e.id AND d.delivered_at IS NULL AND d.failed_at IS NULL)
