"""User access tokens (HS256 JWTs) and refresh tokens (opaque, stored as a hash).

An access token lives 15 minutes and carries `iss` (PUBLIC_URL), `aud` (`controlplane-api`),
`sub` (the user id), `iat`, `exp`, `jti` and `ver`, the user's token version when it was
issued: bumping the version in the users row (password change, disable) kills every token
issued before at once. Verification accepts HS256 with our key only, the right issuer and
audience, every claim present, and 30 seconds of clock leeway.

A refresh token is 32 random bytes (URL-safe text); the database keeps only its SHA-256,
which is enough for a value with that much entropy.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from controlplane.config import Settings
from controlplane.crypto import random_token

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)
LEEWAY = timedelta(seconds=30)
AUDIENCE = "controlplane-api"
ALGORITHM = "HS256"
_REQUIRED = ["iss", "aud", "sub", "iat", "exp", "jti", "ver"]


class TokenError(Exception):
    """An access token that must not be accepted; the message is safe to show."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    version: int
    jti: str
    expires_at: datetime


def _key(settings: Settings) -> bytes:
    if settings.jwt_secret is None:
        raise TokenError("user tokens are not configured (JWT_SECRET)")
    return bytes.fromhex(settings.jwt_secret.get_secret_value())


def issue_access_token(
    settings: Settings, *, user_id: uuid.UUID, version: int, now: datetime | None = None
) -> str:
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims = {
        "iss": settings.public_url,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "iat": issued,
        "exp": issued + ACCESS_TTL,
        "jti": uuid.uuid4().hex,
        "ver": version,
    }
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            _key(settings),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=settings.public_url,
            leeway=LEEWAY,
            options={"require": _REQUIRED, "strict_aud": True},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("access token expired") from None
    except jwt.PyJWTError:
        raise TokenError("invalid access token") from None
    try:
        user_id = uuid.UUID(str(claims["sub"]))
        version = claims["ver"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("ver")
    except ValueError:
        raise TokenError("invalid access token") from None
    return AccessClaims(
        user_id=user_id,
        version=version,
        jti=str(claims["jti"]),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


def new_refresh_token() -> tuple[str, bytes]:
    """A fresh refresh token and the hash to store."""
    value = random_token(32)
    return value, hash_refresh_token(value)


def hash_refresh_token(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()
