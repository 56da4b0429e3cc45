-- name: capacity_nodes
-- Every node with its live figures; capacity is total RAM times the overcommit.
SELECT n.id, n.name, n.status, n.maintenance, n.templates,
       n.ssh_host IS NOT NULL AND n.ssh_private_key_sealed IS NOT NULL AS has_ssh,
       n.total_ram_mb, node_ram_capacity_mb(n.total_ram_mb)::bigint AS capacity_ram_mb,
       n.allocated_ram_mb, n.mem_used_mb AS used_ram_mb, n.cpu, n.cpu_count,
       coalesce(t.tenants, 0) AS tenants, coalesce(t.cores, 0) AS allocated_cores
FROM nodes n
LEFT JOIN (SELECT node_id, count(*) AS tenants, sum(cores) AS cores FROM tenants
           WHERE status <> 'deleted' AND node_id IS NOT NULL GROUP BY node_id) t
       ON t.node_id = n.id
ORDER BY n.name, n.id

-- name: capacity_projects
SELECT id, slug, name, ram_mb, cores, template_vmid,
       jsonb_array_length(bootstrap_commands) > 0 AS needs_ssh
FROM projects ORDER BY name, id

-- name: capacity_sample
-- Today's sample of every node (the latest of the day replaces the earlier one).
INSERT INTO capacity_samples (day, node_id, sampled_at, total_ram_mb, allocated_ram_mb,
                              used_ram_mb, cpu, cpu_count, allocated_cores, tenants)
SELECT current_date, n.id, now(), n.total_ram_mb, n.allocated_ram_mb, n.mem_used_mb, n.cpu,
       n.cpu_count, coalesce(t.cores, 0), coalesce(t.tenants, 0)
FROM nodes n
LEFT JOIN (SELECT node_id, count(*) AS tenants, sum(cores) AS cores FROM tenants
           WHERE status <> 'deleted' AND node_id IS NOT NULL GROUP BY node_id) t
       ON t.node_id = n.id
ON CONFLICT (node_id, day) DO UPDATE SET
    sampled_at = excluded.sampled_at, total_ram_mb = excluded.total_ram_mb,
    allocated_ram_mb = excluded.allocated_ram_mb, used_ram_mb = excluded.used_ram_mb,
    cpu = excluded.cpu, cpu_count = excluded.cpu_count,
    allocated_cores = excluded.allocated_cores, tenants = excluded.tenants

-- name: capacity_history
-- Daily samples of the last `days` days, per node, oldest first.
SELECT node_id, day, total_ram_mb, allocated_ram_mb, used_ram_mb, tenants
FROM capacity_samples
WHERE day > current_date - %(days)s::int
ORDER BY day, node_id

-- name: capacity_prune
DELETE FROM capacity_samples WHERE day < current_date - %(keep)s::int
