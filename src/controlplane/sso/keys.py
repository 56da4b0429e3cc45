"""The Ed25519 key pair that signs SSO tokens: made once, private half sealed at rest.

The first replica that needs a key makes one; a unique index on the active key lets only
one of several racing replicas insert, and all of them then read that one. The key id is
the RFC 7638 thumbprint of the public key. Every key ever made stays in the JWKS, so a
future rotation (a new active key) does not break tokens signed just before it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.types.json import Jsonb

from controlplane.crypto import Sealer
from controlplane.db import Database, load_queries

_Q = load_queries("controlplane.sso")
ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    public_jwk: dict[str, Any]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(private_key: Ed25519PrivateKey) -> dict[str, Any]:
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    core = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    # RFC 7638: SHA-256 of the required members, sorted, without white space.
    thumbprint = hashlib.sha256(json.dumps(core, separators=(",", ":")).encode()).digest()
    return {**core, "kid": _b64url(thumbprint), "alg": ALGORITHM, "use": "sig"}


def _seal_params(sealer: Sealer) -> dict[str, Any]:
    private_key = Ed25519PrivateKey.generate()
    jwk = public_jwk(private_key)
    raw = private_key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    sealed = sealer.seal(
        _b64url(raw), table="sso_keys", column="private_key_sealed", row_id=jwk["kid"]
    )
    return {"kid": jwk["kid"], "private_key_sealed": sealed, "public_jwk": Jsonb(jwk)}


async def signing_key(db: Database, sealer: Sealer) -> SigningKey:
    """The active key, made now if there is none yet."""
    row = await db.fetch_one(_Q["key_active"])
    if row is None:
        await db.execute(_Q["key_insert_if_none"], _seal_params(sealer))
        row = await db.fetch_one(_Q["key_active"])
        assert row is not None
    raw = sealer.open(
        row["private_key_sealed"], table="sso_keys", column="private_key_sealed", row_id=row["kid"]
    )
    private_key = Ed25519PrivateKey.from_private_bytes(_b64url_decode(raw))
    return SigningKey(kid=row["kid"], private_key=private_key, public_jwk=row["public_jwk"])


class SigningKeys:
    """The active signing key of this process: read (or made) on first use, then kept."""

    def __init__(self, db: Database, sealer: Sealer) -> None:
        self.db = db
        self._sealer = sealer
        self._active: SigningKey | None = None

    async def active(self) -> SigningKey:
        if self._active is None:
            self._active = await signing_key(self.db, self._sealer)
        return self._active


async def public_keys(db: Database) -> dict[str, dict[str, Any]]:
    """Every public key by key id (empty until the first key is made)."""
    rows = await db.fetch_all(_Q["key_public_all"])
    return {row["kid"]: row["public_jwk"] for row in rows}
