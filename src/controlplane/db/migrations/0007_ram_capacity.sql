-- The RAM a node may hand out: its total times the operator's overcommit factor
-- (system_settings 'ram_overcommit', 1.0 when the row is missing). The one definition used
-- by placement, reservation, resizing and the dashboard; a simple STABLE SQL function, so
-- the planner inlines it into each query as the subquery it replaces.
CREATE FUNCTION node_ram_capacity_mb(total_ram_mb integer) RETURNS double precision
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT total_ram_mb * coalesce(
        (SELECT (value #>> '{}')::double precision FROM system_settings
         WHERE key = 'ram_overcommit'),
        1.0)
$$;
