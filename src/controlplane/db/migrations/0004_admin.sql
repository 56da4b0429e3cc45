-- Admin dashboard: operators, their passkeys, server-side sessions, WebAuthn challenges and
-- login attempts (rate limiting). Owned by `controlplane.admin`.

CREATE TABLE admin_users (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    -- The WebAuthn user handle: random, never the id, never shown.
    user_handle  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT admin_users_name_key UNIQUE (name),
    CONSTRAINT admin_users_handle_key UNIQUE (user_handle)
);

CREATE TABLE admin_passkeys (
    id             uuid PRIMARY KEY,
    admin_user_id  uuid NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    credential_id  bytea NOT NULL,
    public_key     bytea NOT NULL,
    sign_count     bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    transports     jsonb NOT NULL DEFAULT '[]',
    aaguid         text,
    backed_up      boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    CONSTRAINT admin_passkeys_credential_key UNIQUE (credential_id)
);
CREATE INDEX admin_passkeys_user ON admin_passkeys (admin_user_id);

-- The cookie holds a random token; only its SHA-256 is stored, so a copy of this table
-- opens no session. The CSRF synchronizer token lives with the session.
CREATE TABLE admin_sessions (
    id             uuid PRIMARY KEY,
    token_hash     bytea NOT NULL,
    admin_user_id  uuid NOT NULL REFERENCES admin_users (id) ON DELETE CASCADE,
    passkey_id     uuid REFERENCES admin_passkeys (id) ON DELETE SET NULL,
    csrf_token     text NOT NULL,
    client_ip      text,
    user_agent     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    CONSTRAINT admin_sessions_token_key UNIQUE (token_hash)
);
CREATE INDEX admin_sessions_user ON admin_sessions (admin_user_id) WHERE revoked_at IS NULL;
CREATE INDEX admin_sessions_passkey ON admin_sessions (passkey_id) WHERE revoked_at IS NULL;
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

-- One WebAuthn ceremony in flight; consumed exactly once (DELETE ... RETURNING).
CREATE TABLE admin_challenges (
    id             text PRIMARY KEY,
    purpose        text NOT NULL CHECK (purpose IN ('setup', 'login', 'add_passkey')),
    challenge      bytea NOT NULL,
    admin_user_id  uuid REFERENCES admin_users (id) ON DELETE CASCADE,
    session_id     uuid REFERENCES admin_sessions (id) ON DELETE CASCADE,
    user_name      text,
    user_handle    bytea,
    passkey_name   text,
    client_ip      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX admin_challenges_expires ON admin_challenges (expires_at);

CREATE TABLE admin_login_attempts (
    id         bigserial PRIMARY KEY,
    client_ip  text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('started', 'failed', 'ok')),
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_login_attempts_ip ON admin_login_attempts (client_ip, at DESC);
