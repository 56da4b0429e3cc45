-- name: events_after
-- The next batch after a cursor; `owner` narrows it to one user's tenants.
SELECT id, kind, subject_id, deleted, data
FROM events
WHERE id > %(after)s
  AND (%(owner)s::uuid IS NULL OR (kind = 'tenant' AND owner_user_id = %(owner)s))
ORDER BY id
LIMIT %(limit)s

-- name: events_head
-- The newest number handed out so far (0 before the first event).
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS head FROM events_id_seq

-- name: events_oldest
SELECT min(id) AS oldest FROM events

-- name: events_prune
DELETE FROM events
WHERE id IN (SELECT id FROM events WHERE at < now() - make_interval(secs => %(keep)s)
             ORDER BY id LIMIT 5000)
