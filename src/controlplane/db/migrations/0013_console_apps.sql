-- The browser console (single-use tickets, audited sessions) and app management (the
-- project's service unit and named actions, and the runs of them kept with their output).

-- A project declares its app: the systemd unit and named actions run inside the container.
ALTER TABLE projects ADD COLUMN app_service text;
ALTER TABLE projects ADD COLUMN app_actions jsonb NOT NULL DEFAULT '[]';

-- A console ticket: 32 random bytes given out once, stored only as SHA-256, valid for a
-- few seconds, consumed by a compare-and-swap on used_at.
CREATE TABLE console_tickets (
    id          uuid PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor       text NOT NULL,          -- audit name: user:<id>, admin-token, admin:<id>
    user_id     uuid,                   -- the user who asked (NULL for an admin)
    client_ip   text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX console_tickets_expires ON console_tickets (expires_at);

-- One row per console session: who, when, bytes each way (never the content). A live
-- session renews alive_until; one whose process died is no longer counted against the
-- limits once alive_until has passed, and is closed by the next session start.
CREATE TABLE console_sessions (
    id          uuid PRIMARY KEY,
    ticket_id   uuid NOT NULL UNIQUE REFERENCES console_tickets (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor       text NOT NULL,
    user_id     uuid,
    client_ip   text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    alive_until timestamptz NOT NULL,
    ended_at    timestamptz,
    end_reason  text,
    bytes_in    bigint NOT NULL DEFAULT 0,   -- keystrokes, browser -> container
    bytes_out   bigint NOT NULL DEFAULT 0    -- terminal output, container -> browser
);
CREATE INDEX console_sessions_open_tenant ON console_sessions (tenant_id) WHERE ended_at IS NULL;
CREATE INDEX console_sessions_open_user ON console_sessions (user_id) WHERE ended_at IS NULL;

-- App management runs (restart, named actions): the command, its exit code and output
-- (tails, bounded), kept so the portal and the dashboard can show the last ones.
CREATE TABLE app_runs (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('restart', 'action')),
    name        text NOT NULL,
    command     text NOT NULL,
    actor       text NOT NULL,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'done', 'failed', 'timeout')),
    exit_status integer,
    stdout      text NOT NULL DEFAULT '',
    stderr      text NOT NULL DEFAULT '',
    error       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX app_runs_tenant ON app_runs (tenant_id, started_at DESC);
-- One run at a time per tenant: a second restart or action while one runs is a 409.
CREATE UNIQUE INDEX app_runs_one_running ON app_runs (tenant_id) WHERE status = 'running';
