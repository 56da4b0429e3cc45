"""Sealing secrets at rest with AES-256-GCM.

A sealed value is `v<key version>:<base64url(nonce || ciphertext+tag)>`. The nonce is random
per value (96 bits). The associated data binds the ciphertext to its place,
`<table>.<column>.<row id>`, so a sealed value copied into another row or column fails to
open instead of silently becoming someone else's secret. The version prefix lets a later
key rotation open old values with the old key while sealing new ones with the new key.
"""

from __future__ import annotations

import base64
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value cannot be opened: wrong key, wrong row, or tampered."""


def _aad(table: str, column: str, row_id: object) -> bytes:
    return f"{table}.{column}.{row_id}".encode()


class Sealer:
    """Seals and opens secrets with a keyring; the newest key seals."""

    def __init__(self, keys: dict[int, bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        for version, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key version {version} must be 32 bytes")
        self._keys = {version: AESGCM(key) for version, key in keys.items()}
        self._current = max(keys)

    @classmethod
    def from_key(cls, key: bytes) -> Sealer:
        return cls({1: key})

    def seal(self, plaintext: str, *, table: str, column: str, row_id: object) -> str:
        nonce = os.urandom(NONCE_BYTES)
        aead = self._keys[self._current]
        blob = nonce + aead.encrypt(nonce, plaintext.encode(), _aad(table, column, row_id))
        return f"v{self._current}:" + base64.urlsafe_b64encode(blob).decode().rstrip("=")

    def open(self, sealed: str, *, table: str, column: str, row_id: object) -> str:
        try:
            prefix, body = sealed.split(":", 1)
            version = int(prefix.removeprefix("v"))
            aead = self._keys[version]
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            nonce, ciphertext = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
            return aead.decrypt(nonce, ciphertext, _aad(table, column, row_id)).decode()
        except (ValueError, KeyError, InvalidTag) as exc:
            raise SealError(f"cannot open sealed {table}.{column} of row {row_id}") from exc


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random token, for API tokens and refresh tokens."""
    return secrets.token_urlsafe(nbytes)
