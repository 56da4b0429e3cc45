-- name: usage_claim_tenants
-- One Proxmox call per tenant per interval across replicas: the claim is a compare-and-swap
-- on claimed_at (a second replica's upsert waits for the first's row, then sees it fresh).
WITH due AS (
    SELECT t.id, t.node_id, t.vmid
    FROM tenants t
    LEFT JOIN usage_sources s ON s.kind = 'tenant' AND s.subject_id = t.id
    WHERE t.status = 'active' AND t.vmid IS NOT NULL AND t.node_id IS NOT NULL
      AND (s.claimed_at IS NULL
           OR s.claimed_at <= now() - make_interval(secs => %(interval)s))
    ORDER BY s.claimed_at NULLS FIRST
    LIMIT %(limit)s
), claimed AS (
    INSERT INTO usage_sources AS s (kind, subject_id, claimed_at)
    SELECT 'tenant', id, now() FROM due
    ON CONFLICT (kind, subject_id) DO UPDATE SET claimed_at = now()
        WHERE s.claimed_at <= now() - make_interval(secs => %(interval)s)
    RETURNING s.subject_id, s.hour_at, s.day_at, s.week_at, s.month_at
)
SELECT c.*, d.node_id, d.vmid FROM claimed c JOIN due d ON d.id = c.subject_id

-- name: usage_claim_nodes
WITH due AS (
    SELECT n.id
    FROM nodes n
    LEFT JOIN usage_sources s ON s.kind = 'node' AND s.subject_id = n.id
    WHERE n.status = 'online'
      AND (s.claimed_at IS NULL
           OR s.claimed_at <= now() - make_interval(secs => %(interval)s))
    ORDER BY s.claimed_at NULLS FIRST
    LIMIT %(limit)s
), claimed AS (
    INSERT INTO usage_sources AS s (kind, subject_id, claimed_at)
    SELECT 'node', id, now() FROM due
    ON CONFLICT (kind, subject_id) DO UPDATE SET claimed_at = now()
        WHERE s.claimed_at <= now() - make_interval(secs => %(interval)s)
    RETURNING s.subject_id, s.hour_at, s.day_at, s.week_at, s.month_at
)
SELECT c.*, c.subject_id AS node_id FROM claimed c

-- name: usage_nodes
SELECT * FROM nodes WHERE id = ANY(%(ids)s::uuid[])

-- name: tenant_usage_store
-- One statement per read (a round trip, not five): upsert the points the archive still
-- keeps (idempotent: a point read twice is the same row, updated), trim what it no longer
-- keeps, and mark the archive read. The parts see one snapshot and touch disjoint rows.
WITH up AS (
    INSERT INTO tenant_usage AS u (tenant_id, timeframe, at, cpu, maxcpu, mem, maxmem, netin,
                                   netout, diskread, diskwrite)
    SELECT %(id)s, %(timeframe)s, to_timestamp(p.t), p.cpu, p.maxcpu, p.mem, p.maxmem, p.netin,
           p.netout, p.diskread, p.diskwrite
    FROM unnest(%(time)s::bigint[], %(cpu)s::float8[], %(maxcpu)s::float8[], %(mem)s::float8[],
                %(maxmem)s::float8[], %(netin)s::float8[], %(netout)s::float8[],
                %(diskread)s::float8[], %(diskwrite)s::float8[])
         AS p(t, cpu, maxcpu, mem, maxmem, netin, netout, diskread, diskwrite)
    WHERE to_timestamp(p.t) >= now() - make_interval(secs => %(keep)s)
    ON CONFLICT (tenant_id, timeframe, at) DO UPDATE SET
        cpu = EXCLUDED.cpu, maxcpu = EXCLUDED.maxcpu, mem = EXCLUDED.mem,
        maxmem = EXCLUDED.maxmem, netin = EXCLUDED.netin, netout = EXCLUDED.netout,
        diskread = EXCLUDED.diskread, diskwrite = EXCLUDED.diskwrite
    RETURNING 1
), trimmed AS (
    DELETE FROM tenant_usage
    WHERE tenant_id = %(id)s AND timeframe = %(timeframe)s
      AND at < now() - make_interval(secs => %(keep)s)
    RETURNING 1
)
UPDATE usage_sources SET
    hour_at = CASE WHEN %(timeframe)s = 'hour' THEN now() ELSE hour_at END,
    day_at = CASE WHEN %(timeframe)s = 'day' THEN now() ELSE day_at END,
    week_at = CASE WHEN %(timeframe)s = 'week' THEN now() ELSE week_at END,
    month_at = CASE WHEN %(timeframe)s = 'month' THEN now() ELSE month_at END
WHERE kind = 'tenant' AND subject_id = %(id)s

-- name: node_usage_store
WITH up AS (
    INSERT INTO node_usage AS u (node_id, timeframe, at, cpu, maxcpu, loadavg, iowait, memused,
                                 memtotal, swapused, swaptotal, rootused, roottotal, netin,
                                 netout)
    SELECT %(id)s, %(timeframe)s, to_timestamp(p.t), p.cpu, p.maxcpu, p.loadavg, p.iowait,
           p.memused, p.memtotal, p.swapused, p.swaptotal, p.rootused, p.roottotal, p.netin,
           p.netout
    FROM unnest(%(time)s::bigint[], %(cpu)s::float8[], %(maxcpu)s::float8[],
                %(loadavg)s::float8[], %(iowait)s::float8[], %(memused)s::float8[],
                %(memtotal)s::float8[], %(swapused)s::float8[], %(swaptotal)s::float8[],
                %(rootused)s::float8[], %(roottotal)s::float8[], %(netin)s::float8[],
                %(netout)s::float8[])
         AS p(t, cpu, maxcpu, loadavg, iowait, memused, memtotal, swapused, swaptotal,
              rootused, roottotal, netin, netout)
    WHERE to_timestamp(p.t) >= now() - make_interval(secs => %(keep)s)
    ON CONFLICT (node_id, timeframe, at) DO UPDATE SET
        cpu = EXCLUDED.cpu, maxcpu = EXCLUDED.maxcpu, loadavg = EXCLUDED.loadavg,
        iowait = EXCLUDED.iowait, memused = EXCLUDED.memused, memtotal = EXCLUDED.memtotal,
        swapused = EXCLUDED.swapused, swaptotal = EXCLUDED.swaptotal,
        rootused = EXCLUDED.rootused, roottotal = EXCLUDED.roottotal, netin = EXCLUDED.netin,
        netout = EXCLUDED.netout
    RETURNING 1
), trimmed AS (
    DELETE FROM node_usage
    WHERE node_id = %(id)s AND timeframe = %(timeframe)s
      AND at < now() - make_interval(secs => %(keep)s)
    RETURNING 1
)
UPDATE usage_sources SET
    hour_at = CASE WHEN %(timeframe)s = 'hour' THEN now() ELSE hour_at END,
    day_at = CASE WHEN %(timeframe)s = 'day' THEN now() ELSE day_at END,
    week_at = CASE WHEN %(timeframe)s = 'week' THEN now() ELSE week_at END,
    month_at = CASE WHEN %(timeframe)s = 'month' THEN now() ELSE month_at END
WHERE kind = 'node' AND subject_id = %(id)s

-- name: usage_prune
-- Points older than their archive keeps (the subjects no longer read: deleted, suspended),
-- and the bookkeeping of subjects that are gone.
WITH keep AS (
    SELECT * FROM unnest(%(timeframes)s::text[], %(keep)s::float8[]) AS k(timeframe, secs)
), t AS (
    DELETE FROM tenant_usage u USING keep k
    WHERE u.timeframe = k.timeframe AND u.at < now() - make_interval(secs => k.secs)
    RETURNING 1
), n AS (
    DELETE FROM node_usage u USING keep k
    WHERE u.timeframe = k.timeframe AND u.at < now() - make_interval(secs => k.secs)
    RETURNING 1
), s AS (
    DELETE FROM usage_sources s
    WHERE (s.kind = 'tenant' AND NOT EXISTS (
               SELECT 1 FROM tenants t WHERE t.id = s.subject_id AND t.status <> 'deleted'))
       OR (s.kind = 'node' AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = s.subject_id))
    RETURNING 1
)
SELECT (SELECT count(*) FROM t) + (SELECT count(*) FROM n) AS points,
       (SELECT count(*) FROM s) AS sources

-- name: tenant_usage_series
SELECT extract(epoch FROM at)::bigint AS time, cpu, maxcpu, mem, maxmem, netin, netout,
       diskread, diskwrite
FROM tenant_usage
WHERE tenant_id = %(id)s AND timeframe = %(timeframe)s
  AND at >= now() - make_interval(secs => %(keep)s)
ORDER BY at

-- name: node_usage_series
SELECT extract(epoch FROM at)::bigint AS time, cpu, maxcpu, loadavg, iowait, memused, memtotal,
       swapused, swaptotal, rootused, roottotal, netin, netout
FROM node_usage
WHERE node_id = %(id)s AND timeframe = %(timeframe)s
  AND at >= now() - make_interval(secs => %(keep)s)
ORDER BY at

-- name: usage_source_get
SELECT * FROM usage_sources WHERE kind = %(kind)s AND subject_id = %(id)s
