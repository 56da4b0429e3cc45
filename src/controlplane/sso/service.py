"""Issuing, publishing and redeeming SSO tokens for tenant apps.

A token says "this user may log into this tenant's app now": EdDSA (Ed25519), 60 seconds,
`aud` = the tenant's host name, a unique `jti`. The tenant app verifies it with the public
key from `/.well-known/jwks.json`, so it holds no secret of ours; apps that want each token
used once also call `POST /api/v1/sso/redeem`, which accepts every `jti` once.

Claims: iss (PUBLIC_URL), aud (`{subdomain}.{BASE_DOMAIN}`), sub (user id), email, tid
(tenant id), iat, nbf, exp, jti.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import jwt

from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Database, load_queries
from controlplane.errors import Conflict, Unauthorized
from controlplane.sso.keys import ALGORITHM, SigningKey, public_keys, signing_key
from controlplane.state import Services

_Q = load_queries("controlplane.sso")
TTL = timedelta(seconds=60)
LEEWAY = timedelta(seconds=5)
_REQUIRED = ["iss", "aud", "sub", "iat", "exp", "jti", "tid"]


def tenant_host(settings: Settings, subdomain: str) -> str:
    return f"{subdomain}.{settings.base_domain}"


def _db(state_or_db: Services | Database) -> Database:
    return state_or_db.db if isinstance(state_or_db, Services) else state_or_db


async def _signing_key(state_or_db: Services | Database, sealer: Sealer) -> SigningKey:
    """The active key; with the services, opened once per process and kept there."""
    if isinstance(state_or_db, Services):
        return await state_or_db.signing_keys.active()
    return await signing_key(state_or_db, sealer)


async def issue_sso_token(
    state_or_db: Services | Database,
    sealer: Sealer,
    settings: Settings,
    *,
    user_id: uuid.UUID | str,
    tenant_id: uuid.UUID | str,
    subdomain: str,
    email: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A signed token and the URL that logs the user into the tenant's app."""
    key = await _signing_key(state_or_db, sealer)
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    host = tenant_host(settings, subdomain)
    claims: dict[str, Any] = {
        "iss": settings.public_url,
        "aud": host,
        "sub": str(user_id),
        "tid": str(tenant_id),
        "iat": issued,
        "nbf": issued,
        "exp": issued + TTL,
        "jti": uuid.uuid4().hex,
    }
    if email is not None:
        claims["email"] = email
    token = jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"}
    )
    return {
        "token": token,
        "url": f"https://{host}/sso?token={quote(token, safe='')}",
        "expires_in": int(TTL.total_seconds()),
    }


async def jwks(state_or_db: Services | Database, sealer: Sealer) -> dict[str, Any]:
    """The JSON Web Key Set tenant apps verify with (makes the first key if needed)."""
    db = _db(state_or_db)
    keys = await public_keys(db)
    if not keys:
        await _signing_key(state_or_db, sealer)
        keys = await public_keys(db)
    return {"keys": list(keys.values())}


async def verify_sso_token(
    state_or_db: Services | Database, settings: Settings, *, token: str, audience: str
) -> dict[str, Any]:
    """The claims of a valid token for `audience`; 401 otherwise."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise Unauthorized("invalid SSO token") from None
    jwk = (await public_keys(_db(state_or_db))).get(str(kid))
    if jwk is None:
        raise Unauthorized("invalid SSO token: unknown key id")
    try:
        return jwt.decode(
            token,
            jwt.PyJWK(jwk),
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=settings.public_url,
            leeway=LEEWAY,
            options={"require": _REQUIRED, "strict_aud": True},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("SSO token expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("SSO token is for another audience") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid SSO token") from None


async def redeem_sso_token(
    state_or_db: Services | Database, settings: Settings, *, token: str, audience: str
) -> dict[str, Any]:
    """Verify and consume: each token once (409 the second time)."""
    claims = await verify_sso_token(state_or_db, settings, token=token, audience=audience)
    db = _db(state_or_db)
    tenant_id = _uuid_or_none(claims.get("tid"))
    user_id = _uuid_or_none(claims.get("sub"))
    redeemed = await db.fetch_one(
        _Q["redemption_insert"],
        {
            "jti": str(claims["jti"]),
            "tenant_id": tenant_id,
            "user_id": user_id,
            "expires_at": datetime.fromtimestamp(claims["exp"], UTC) + LEEWAY,
        },
    )
    if redeemed is None:
        raise Conflict("this SSO token was already redeemed")
    await db.execute(_Q["redemption_prune"])
    return claims


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
