-- name: audit_page
-- One round trip for a page and the total of the filtered list.
WITH filtered AS (
    SELECT id, at, actor, action, target_type, target_id, details, client_ip, request_id
    FROM audit_log
    WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)
      AND (%(action)s::text IS NULL OR action = %(action)s)
      AND (%(target_type)s::text IS NULL OR target_type = %(target_type)s)
      AND (%(target_id)s::text IS NULL OR target_id = %(target_id)s)
      AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
)
SELECT (SELECT count(*) FROM filtered) AS total,
       coalesce((SELECT json_agg(p) FROM (
           SELECT * FROM filtered ORDER BY at DESC, id DESC
           LIMIT %(limit)s OFFSET %(offset)s) p), '[]'::json) AS items
