-- Operating a fleet: webhooks (endpoints, events, an outbox of deliveries; tenant, node
-- and operation events by trigger), node maintenance mode, and daily capacity samples.

-- Webhook endpoints an operator registers. The signing secret is sealed (AES-256-GCM,
-- bound to this table, column and row) and shown once, at creation.
CREATE TABLE webhook_endpoints (
    id            uuid PRIMARY KEY,
    url           text NOT NULL UNIQUE,
    description   text NOT NULL DEFAULT '',
    -- Exact event types (`tenant.active`), a group (`tenant.*`) or everything (`*`).
    events        text[] NOT NULL CHECK (cardinality(events) > 0),
    secret_sealed text NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per event some endpoint wanted; its id is the event's unique id in every
-- delivery (receivers deduplicate on it).
CREATE TABLE webhook_events (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    data       jsonb NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

-- The outbox: one row per (endpoint, event), written in the transaction of the event
-- itself, claimed by the sender with SKIP LOCKED and a lease (next_attempt_at), like the
-- mail outbox. A manual redelivery is a new row pointing at the one it repeats.
CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    redelivery_of   bigint REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    failed_at       timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);

-- The one way to raise an event: records it and queues a delivery for every enabled
-- endpoint that subscribes to its type, in the caller's transaction. Nothing is stored
-- when no endpoint wants it. Python calls it through controlplane.webhooks.events.enqueue.
CREATE FUNCTION webhook_enqueue(p_type text, p_data jsonb) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    event_id uuid;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM webhook_endpoints
        WHERE enabled AND (p_type = ANY (events) OR '*' = ANY (events)
                           OR split_part(p_type, '.', 1) || '.*' = ANY (events))
    ) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_events (type, data) VALUES (p_type, p_data) RETURNING id INTO event_id;
    INSERT INTO webhook_deliveries (endpoint_id, event_id)
    SELECT id, event_id FROM webhook_endpoints
    WHERE enabled AND (p_type = ANY (events) OR '*' = ANY (events)
                       OR split_part(p_type, '.', 1) || '.*' = ANY (events));
    PERFORM pg_notify('cp_webhooks', '');
    RETURN event_id;
END $$;

-- tenant.created, then tenant.<status> on every change of status.
CREATE FUNCTION tenant_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := 'tenant.created';
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        kind := 'tenant.' || NEW.status;
    ELSE
        RETURN NULL;
    END IF;
    PERFORM webhook_enqueue(kind, jsonb_build_object(
        'id', NEW.id, 'name', NEW.name, 'subdomain', NEW.subdomain, 'status', NEW.status,
        'previous_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
        'project_id', NEW.project_id, 'node_id', NEW.node_id,
        'owner_user_id', NEW.owner_user_id, 'vmid', NEW.vmid, 'ram_mb', NEW.ram_mb,
        'cores', NEW.cores, 'suspended_by', NEW.suspended_by, 'error_step', NEW.error_step,
        'last_error', NEW.last_error));
    RETURN NULL;
END $$;

CREATE TRIGGER tenants_webhook AFTER INSERT OR UPDATE OF status ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenant_webhook();

-- operation.queued, operation.running, operation.succeeded, operation.failed: the
-- lifecycle operations (migration 0011) on every change of status.
CREATE FUNCTION operation_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_enqueue('operation.' || NEW.status, jsonb_build_object(
        'id', NEW.id, 'tenant_id', NEW.tenant_id, 'kind', NEW.kind, 'status', NEW.status,
        'previous_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
        'step', NEW.step, 'error', NEW.error, 'requested_by', NEW.requested_by,
        'started_at', NEW.started_at, 'finished_at', NEW.finished_at));
    RETURN NULL;
END $$;

CREATE TRIGGER operations_webhook AFTER INSERT OR UPDATE OF status ON operations
    FOR EACH ROW EXECUTE FUNCTION operation_webhook();

-- Node maintenance: placement skips a node in maintenance at once; its tenants keep
-- running.
ALTER TABLE nodes ADD COLUMN maintenance boolean NOT NULL DEFAULT false;
ALTER TABLE nodes ADD COLUMN maintenance_reason text;
ALTER TABLE nodes ADD COLUMN maintenance_since timestamptz;

-- A node in maintenance takes no new reservation of RAM: tenant_place (migration 0015)
-- skips it, atomically, because its reserving UPDATE finds no row (this trigger drops
-- it) and the next candidate is tried; so do moves onto it and growth of its tenants.
-- Releases (allocated going down) and every other change pass.
CREATE FUNCTION nodes_maintenance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.maintenance AND NEW.maintenance AND NEW.allocated_ram_mb > OLD.allocated_ram_mb THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER nodes_maintenance_guard BEFORE UPDATE OF allocated_ram_mb ON nodes
    FOR EACH ROW EXECUTE FUNCTION nodes_maintenance_guard();

-- node.created, node.<status> (online, offline, unknown), node.maintenance_on/_off and
-- node.deleted. Never a secret: the payload names its fields.
CREATE FUNCTION node_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    n nodes;
BEGIN
    IF TG_OP = 'DELETE' THEN
        n := OLD;
        kind := 'node.deleted';
    ELSE
        n := NEW;
        IF TG_OP = 'INSERT' THEN
            kind := 'node.created';
        ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
            kind := 'node.' || NEW.status;
        ELSIF NEW.maintenance IS DISTINCT FROM OLD.maintenance THEN
            kind := CASE WHEN NEW.maintenance THEN 'node.maintenance_on'
                         ELSE 'node.maintenance_off' END;
        ELSE
            RETURN NULL;
        END IF;
    END IF;
    PERFORM webhook_enqueue(kind, jsonb_build_object(
        'id', n.id, 'name', n.name, 'pve_node', n.pve_node, 'status', n.status,
        'previous_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
        'last_error', n.last_error, 'maintenance', n.maintenance,
        'maintenance_reason', n.maintenance_reason, 'total_ram_mb', n.total_ram_mb,
        'allocated_ram_mb', n.allocated_ram_mb));
    RETURN NULL;
END $$;

CREATE TRIGGER nodes_webhook AFTER INSERT OR DELETE OR UPDATE OF status, maintenance ON nodes
    FOR EACH ROW EXECUTE FUNCTION node_webhook();

-- The node's CPU count as Proxmox reports it (status.cpuinfo.cpus), kept by the poller.
ALTER TABLE nodes ADD COLUMN cpu_count integer;

-- Capacity: one sample per node and day (the latest of the day wins), kept for the
-- days-until-full estimate.
CREATE TABLE capacity_samples (
    day              date NOT NULL,
    node_id          uuid NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    sampled_at       timestamptz NOT NULL DEFAULT now(),
    total_ram_mb     integer NOT NULL,
    allocated_ram_mb integer NOT NULL,
    used_ram_mb      integer,
    cpu              double precision,
    cpu_count        integer,
    allocated_cores  integer NOT NULL,
    tenants          integer NOT NULL,
    PRIMARY KEY (node_id, day)
);
