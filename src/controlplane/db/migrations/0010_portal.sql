-- The customer portal: projects open to users, step timing, live events, e-mail.

-- Only projects the operator opens to users can be picked by them (the admin API can use
-- any project).
ALTER TABLE projects ADD COLUMN self_service boolean NOT NULL DEFAULT false;

-- When the tenant's current step began, kept by a trigger so every writer gets it right.
ALTER TABLE tenants ADD COLUMN step_started_at timestamptz;
UPDATE tenants SET step_started_at = updated_at WHERE step IS NOT NULL;

CREATE FUNCTION tenants_step_started() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.step IS NULL THEN
        NEW.step_started_at := NULL;
    ELSIF TG_OP = 'INSERT' OR NEW.step IS DISTINCT FROM OLD.step
          OR NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.step_started_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER tenants_step_started BEFORE INSERT OR UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_step_started();

-- Live events: one row per change of a tenant or node, numbered in commit order.
-- The trigger is deferred to commit time and takes a transaction advisory lock before it
-- draws the number, so numbers are handed out in the order transactions commit: a reader
-- that has seen number N has seen everything below it, and `Last-Event-ID` resumes
-- without loss. At commit a transaction holds its row locks and asks for no more, so the
-- lock cannot deadlock; it serialises only the last moment of committing writers.
CREATE SEQUENCE events_id_seq;
CREATE TABLE events (
    id            bigint PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    kind          text NOT NULL CHECK (kind IN ('tenant', 'node')),
    subject_id    uuid NOT NULL,
    owner_user_id uuid,
    deleted       boolean NOT NULL DEFAULT false,
    data          jsonb NOT NULL
);
CREATE INDEX events_owner ON events (owner_user_id, id);
CREATE INDEX events_at ON events (at);

CREATE FUNCTION record_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- Secrets and bookkeeping (leases, command output) never go into an event.
    hidden text[] := ARRAY['token_secret_sealed', 'ssh_private_key_sealed', 'command_output',
                           'lease_owner', 'lease_expires_at', 'next_attempt_at'];
    -- Changes of these alone are not news (pollers touch them all the time).
    noise text[] := ARRAY['updated_at', 'observed', 'observed_at', 'polled_at', 'last_seen',
                          'mem_used_mb', 'cpu', 'uptime_s', 'poll_failures'];
    row_data jsonb;
    event_id bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_data := to_jsonb(OLD);
    ELSE
        row_data := to_jsonb(NEW);
    END IF;
    IF TG_ARGV[0] = 'node' THEN
        row_data := row_data || jsonb_build_object(
            'has_ssh_key', row_data ->> 'ssh_private_key_sealed' IS NOT NULL);
    END IF;
    row_data := row_data - hidden;
    IF TG_OP = 'UPDATE' AND (to_jsonb(OLD) - hidden - noise) = (row_data - 'has_ssh_key' - noise)
    THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(7243540012);
    event_id := nextval('events_id_seq');
    INSERT INTO events (id, kind, subject_id, owner_user_id, deleted, data)
    VALUES (event_id, TG_ARGV[0], (row_data ->> 'id')::uuid,
            CASE WHEN TG_ARGV[0] = 'tenant' THEN (row_data ->> 'owner_user_id')::uuid END,
            TG_OP = 'DELETE', row_data);
    PERFORM pg_notify('cp_events', event_id::text);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER tenants_events AFTER INSERT OR UPDATE ON tenants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION record_event('tenant');
CREATE CONSTRAINT TRIGGER nodes_events AFTER INSERT OR UPDATE OR DELETE ON nodes
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION record_event('node');

-- E-mail: verified addresses, single-use tokens (only their SHA-256 kept), and the outbox
-- a mail is written to in the transaction that causes it, before anything is sent.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

CREATE TABLE user_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);

CREATE TABLE mail_outbox (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    kind            text NOT NULL,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz,
    failed_at       timestamptz
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
