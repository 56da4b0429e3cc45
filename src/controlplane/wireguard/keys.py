"""X25519 keys as WireGuard writes them: base64 of 32 raw bytes (the UAPI wants hex)."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

KEY_BYTES = 32


def generate_keypair() -> tuple[str, str]:
    """A new (private, public) pair, identical in form to `wg genkey | wg pubkey`."""
    key = X25519PrivateKey.generate()
    private = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    public = key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


def public_key_of(private_key: str) -> str:
    raw = base64.b64decode(private_key)
    key = X25519PrivateKey.from_private_bytes(raw)
    return base64.b64encode(
        key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    ).decode()


def check_key(value: str) -> str:
    """The key unchanged if it is canonical base64 of 32 bytes and not all zeros."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be a WireGuard key: base64 of 32 bytes (44 characters)") from None
    if len(raw) != KEY_BYTES or base64.b64encode(raw).decode() != value:
        raise ValueError(
            f"must be a WireGuard key: base64 of 32 bytes (44 characters), got {len(raw)} bytes"
        )
    if raw == bytes(KEY_BYTES):
        raise ValueError("must not be the all-zero key")
    return value


def to_hex(key: str) -> str:
    return base64.b64decode(key).hex()


def from_hex(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode()
