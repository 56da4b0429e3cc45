-- WireGuard peers of the hub interface. The rows are the truth; the interface follows them.

CREATE TABLE wireguard_peers (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- base64 of the 32-byte X25519 public key, as `wg` prints it.
    public_key          text NOT NULL CHECK (length(public_key) = 44),
    -- Only when we generated the key pair; sealed with the row id (crypto.Sealer).
    private_key_sealed  text,
    -- The peer's tunnel address inside WG_SUBNET (a host address: /32 or /128).
    address             inet NOT NULL,
    -- What the hub routes to this peer: always the address, plus networks behind the peer.
    allowed_ips         cidr[] NOT NULL CHECK (cardinality(allowed_ips) >= 1),
    enabled             boolean NOT NULL DEFAULT true,
    notes               text,
    tenant_id           uuid REFERENCES tenants (id) ON DELETE SET NULL,
    -- A user of the control plane (no foreign key: accounts live in another domain).
    user_id             uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wireguard_peers_public_key_key UNIQUE (public_key),
    CONSTRAINT wireguard_peers_address_key UNIQUE (address)
);
CREATE INDEX wireguard_peers_created ON wireguard_peers (created_at, id);
CREATE INDEX wireguard_peers_tenant ON wireguard_peers (tenant_id) WHERE tenant_id IS NOT NULL;
CREATE INDEX wireguard_peers_user ON wireguard_peers (user_id) WHERE user_id IS NOT NULL;

-- Every change, from the API or by hand, wakes the interface syncers (LISTEN wireguard_peers).
CREATE FUNCTION wireguard_peers_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wireguard_peers', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER wireguard_peers_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON wireguard_peers
    FOR EACH STATEMENT EXECUTE FUNCTION wireguard_peers_notify();
