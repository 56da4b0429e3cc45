-- Tenant addresses are pinned: `ip_address` is recorded at first provisioning and never
-- follows what the container reports later (root inside it controls its interfaces).
-- A different report is kept in `reported_ip_address` for the operator to see.
ALTER TABLE tenants ADD COLUMN reported_ip_address text;

-- Two live tenants never share an address: the second would receive the first's traffic.
-- Rows that share one today (only possible before pinning) keep it on the oldest tenant;
-- the others lose the pin, are flagged, and show the address as reported.
WITH ranked AS (
    SELECT id, row_number() OVER (PARTITION BY ip_address ORDER BY created_at, id) AS n
    FROM tenants
    WHERE status <> 'deleted' AND ip_address IS NOT NULL
)
UPDATE tenants t
SET reported_ip_address = t.ip_address, ip_address = NULL, health = 'address_changed'
FROM ranked
WHERE ranked.id = t.id AND ranked.n > 1;

CREATE UNIQUE INDEX tenants_live_ip_address_key ON tenants (ip_address)
    WHERE status <> 'deleted' AND ip_address IS NOT NULL;
