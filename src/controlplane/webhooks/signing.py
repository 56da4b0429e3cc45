"""The signature of a delivery, a scheme like Stripe's.

    Controlplane-Signature: t=1767225600,v1=5257a869e7ec...8bd  (64 hex digits)

`v1` is the hex HMAC-SHA256, keyed with the endpoint's secret, of `f"{t}.{body}"` where
`t` is the Unix time of the attempt and `body` the exact bytes of the request body. A
receiver recomputes it, compares in constant time, and refuses a `t` too far from its
clock (replays). The secret is the whole `whsec_...` string.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Controlplane-Signature"
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def header_value(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_s: int = TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver does: the reference implementation of the documented check."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, t, body))
