-- Failed logins per account, for the per-account login throttle (controlplane.auth).
-- Keyed by the normalised e-mail address given, so unknown addresses count the same way.
CREATE TABLE login_failures (
    id     bigserial PRIMARY KEY,
    email  text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email_at ON login_failures (email, at DESC);
CREATE INDEX login_failures_at ON login_failures (at);
