-- End users (the operator's customers), their refresh tokens, and tenant single sign-on.

CREATE TABLE users (
    id               uuid PRIMARY KEY,
    -- Normalised (trimmed, NFKC, lower-case) by the application before it gets here.
    email            text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash    text NOT NULL,
    -- Bumped when every token of the user must die at once (password change, disable):
    -- access tokens carry the version they were issued under.
    token_version    integer NOT NULL DEFAULT 0,
    disabled_at      timestamptz,
    last_login_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE INDEX users_created ON users (created_at DESC, id DESC);

-- A refresh token is stored only as its SHA-256. Each rotation makes a new row in the same
-- family and marks the old one used; presenting a used one revokes the whole family. A
-- token carries the user's token version at issue, so bumping it kills the token too.
CREATE TABLE refresh_tokens (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id        uuid NOT NULL,
    token_hash       bytea NOT NULL,
    token_version    integer NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz,
    revoked_at       timestamptz,
    revoked_reason   text,
    CONSTRAINT refresh_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_live ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Ed25519 keys that sign SSO tokens for tenant apps; the private half sealed (AES-GCM).
CREATE TABLE sso_keys (
    kid                 text PRIMARY KEY,
    private_key_sealed  text NOT NULL,
    public_jwk          jsonb NOT NULL,
    active              boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now()
);
-- Exactly one key signs; replicas racing to create the first one converge on one row.
CREATE UNIQUE INDEX sso_keys_one_active ON sso_keys (active) WHERE active;

-- SSO token ids redeemed once; kept until the token could no longer verify anyway.
CREATE TABLE sso_redemptions (
    jti          text PRIMARY KEY,
    tenant_id    uuid,
    user_id      uuid,
    expires_at   timestamptz NOT NULL,
    redeemed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sso_redemptions_expires ON sso_redemptions (expires_at);

ALTER TABLE tenants
    ADD CONSTRAINT tenants_owner_user_id_fkey
    FOREIGN KEY (owner_user_id) REFERENCES users (id);
