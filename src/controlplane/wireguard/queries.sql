-- The public columns of a peer (everything but the sealed private key).
-- name: peer_get
SELECT id, name, public_key, private_key_sealed IS NOT NULL AS has_private_key,
       host(address) AS address, allowed_ips::text[] AS allowed_ips, enabled, notes,
       tenant_id, user_id, created_at, updated_at
FROM wireguard_peers WHERE id = %(id)s

-- name: peer_secret
SELECT id, name, address, private_key_sealed FROM wireguard_peers WHERE id = %(id)s

-- name: peer_page
WITH filtered AS (
    SELECT * FROM wireguard_peers
    WHERE (%(enabled)s::boolean IS NULL OR enabled = %(enabled)s)
      AND (%(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s)
      AND (%(user_id)s::uuid IS NULL OR user_id = %(user_id)s)
)
SELECT (SELECT count(*) FROM filtered) AS total,
       coalesce((SELECT json_agg(p) FROM (
           SELECT id, name, public_key, private_key_sealed IS NOT NULL AS has_private_key,
                  host(address) AS address, allowed_ips::text[] AS allowed_ips, enabled, notes,
                  tenant_id, user_id, created_at, updated_at
           FROM filtered ORDER BY created_at, id LIMIT %(limit)s OFFSET %(offset)s) p),
           '[]'::json) AS items

-- name: lock_peers
-- Serialises address allocation and the overlap check among writers (released at commit).
SELECT pg_advisory_xact_lock(%(key)s)

-- name: next_free_address
-- The lowest free host number in [first, last]: either `first` or one past a used one.
WITH used AS (
    SELECT address - %(base)s::inet AS n FROM wireguard_peers WHERE address << %(network)s::cidr
)
SELECT host(%(base)s::inet + c.n) AS address
FROM (SELECT %(first)s::bigint AS n UNION SELECT n + 1 FROM used) c
WHERE c.n BETWEEN %(first)s AND %(last)s
  AND NOT EXISTS (SELECT 1 FROM used u WHERE u.n = c.n)
ORDER BY c.n
LIMIT 1

-- name: peer_count_in
SELECT count(*) AS n FROM wireguard_peers WHERE address << %(network)s::cidr

-- name: peer_overlap
-- Another peer whose allowed IPs overlap one of ours (the hub could route to only one).
SELECT p.name, a::text AS network
FROM wireguard_peers p CROSS JOIN LATERAL unnest(p.allowed_ips) AS a
WHERE p.id <> %(id)s AND a && ANY(%(networks)s::cidr[])
ORDER BY p.created_at
LIMIT 1

-- name: peer_insert
INSERT INTO wireguard_peers (id, name, public_key, private_key_sealed, address, allowed_ips,
                             enabled, notes, tenant_id, user_id)
VALUES (%(id)s, %(name)s, %(public_key)s, %(private_key_sealed)s, %(address)s::inet,
        %(allowed_ips)s::cidr[], %(enabled)s, %(notes)s, %(tenant_id)s, %(user_id)s)
RETURNING id

-- name: peer_update
-- NULL keeps a column; notes change only when set_notes.
UPDATE wireguard_peers SET
    name = coalesce(%(name)s, name),
    allowed_ips = coalesce(%(allowed_ips)s::cidr[], allowed_ips),
    notes = CASE WHEN %(set_notes)s THEN %(notes)s ELSE notes END,
    updated_at = now()
WHERE id = %(id)s
RETURNING id

-- name: peer_set_enabled
-- Compare-and-swap: only a peer in the other state changes (and gets a new updated_at).
UPDATE wireguard_peers SET enabled = %(enabled)s, updated_at = now()
WHERE id = %(id)s AND enabled <> %(enabled)s
RETURNING id

-- name: peer_delete
DELETE FROM wireguard_peers WHERE id = %(id)s RETURNING id, name, public_key, host(address) AS address

-- name: enabled_peers
-- What the hub interface should hold.
SELECT public_key, allowed_ips::text[] AS allowed_ips
FROM wireguard_peers WHERE enabled ORDER BY created_at, id
