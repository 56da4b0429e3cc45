-- Usage history (controlplane.usage): what Proxmox's rrddata said about each tenant's
-- container and each node, kept here so that reading a graph never calls Proxmox.
-- One row per subject, archive and point; an archive is Proxmox's own (hour: 1 min steps,
-- day: 30 min, week: 3 h, month: 12 h) and keeps what Proxmox keeps (70 steps).

CREATE TABLE tenant_usage (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    timeframe  text NOT NULL CHECK (timeframe IN ('hour', 'day', 'week', 'month')),
    at         timestamptz NOT NULL,   -- the point's time as Proxmox gave it (step-aligned)
    cpu        double precision,       -- share of maxcpu, 0..1
    maxcpu     double precision,
    mem        double precision,       -- bytes
    maxmem     double precision,
    netin      double precision,       -- bytes per second (DERIVE data sources)
    netout     double precision,
    diskread   double precision,
    diskwrite  double precision,
    PRIMARY KEY (tenant_id, timeframe, at)
);
CREATE INDEX tenant_usage_age ON tenant_usage (timeframe, at);

CREATE TABLE node_usage (
    node_id    uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    timeframe  text NOT NULL CHECK (timeframe IN ('hour', 'day', 'week', 'month')),
    at         timestamptz NOT NULL,
    cpu        double precision,
    maxcpu     double precision,
    loadavg    double precision,
    iowait     double precision,
    memused    double precision,
    memtotal   double precision,
    swapused   double precision,
    swaptotal  double precision,
    rootused   double precision,
    roottotal  double precision,
    netin      double precision,
    netout     double precision,
    PRIMARY KEY (node_id, timeframe, at)
);
CREATE INDEX node_usage_age ON node_usage (timeframe, at);

-- The collector's bookkeeping, one row per subject: `claimed_at` is the compare-and-swap
-- that lets one replica make one Proxmox call per subject per interval; `<archive>_at` is
-- when that archive was last read successfully (NULL: never).
CREATE TABLE usage_sources (
    kind        text NOT NULL CHECK (kind IN ('tenant', 'node')),
    subject_id  uuid NOT NULL,
    claimed_at  timestamptz NOT NULL,
    hour_at     timestamptz,
    day_at      timestamptz,
    week_at     timestamptz,
    month_at    timestamptz,
    PRIMARY KEY (kind, subject_id)
);
