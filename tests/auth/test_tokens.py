"""Access-token verification: only HS256 with our key, issuer and audience, not expired."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta

import httpx
import jwt
from jwt.warnings import InsecureKeyLengthWarning

from controlplane.auth.tokens import AUDIENCE, issue_access_token
from tests.auth.conftest import bearer
from tests.conftest import JWT_SECRET


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(user: dict, settings, **overrides: object) -> dict:
    now = int(time.time())
    claims = {
        "iss": settings.public_url,
        "aud": AUDIENCE,
        "sub": user["id"],
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
        "ver": 0,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict, key: bytes | None = None, alg: str = "HS256") -> str:
    with warnings.catch_warnings():  # a 32-byte key is short for HS384/HS512: that's the point
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, key or bytes.fromhex(JWT_SECRET), algorithm=alg)


async def _status(client: httpx.AsyncClient, token: str) -> int:
    r = await client.get("/api/v1/auth/me", headers=bearer(token))
    if r.status_code == 401:
        assert r.headers["www-authenticate"].startswith('Bearer realm="controlplane"')
        assert r.json()["error"]["code"] == "unauthorized"
    return r.status_code


async def test_a_well_formed_token_is_accepted(client, user, settings) -> None:
    assert await _status(client, _sign(_claims(user, settings))) == 200


async def test_rejected_variants(client, user, settings) -> None:
    good = _claims(user, settings)
    header_none = _b64({"alg": "none", "typ": "JWT"})
    cases = {
        "alg none": f"{header_none}.{_b64(good)}.",
        "alg none with a signature": f"{header_none}.{_b64(good)}.c2ln",
        "wrong key": _sign(good, secrets.token_bytes(32)),
        "HS512 with our key": _sign(good, alg="HS512"),
        "HS384 with our key": _sign(good, alg="HS384"),
        "key as text, not raw bytes": _sign(good, JWT_SECRET.encode()),
        "wrong issuer": _sign({**good, "iss": "https://evil.example"}),
        "wrong audience": _sign({**good, "aud": "another-api"}),
        "audience list": _sign({**good, "aud": [AUDIENCE, "x"]}),
        "no jti": _sign(_claims(user, settings, jti=None)),
        "no exp": _sign(_claims(user, settings, exp=None)),
        "no version": _sign(_claims(user, settings, ver=None)),
        "not a uuid subject": _sign({**good, "sub": "admin"}),
        "unknown user": _sign({**good, "sub": str(uuid.uuid4())}),
        "stale token version": _sign({**good, "ver": 7}),
        "refresh token used as access token": user["tokens"]["refresh_token"],
        "garbage": "not.a.jwt",
        "tampered payload": (lambda t: t[: t.index(".") + 2] + "A" + t[t.index(".") + 3 :])(
            user["tokens"]["access_token"]
        ),
    }
    for name, token in cases.items():
        assert await _status(client, token) == 401, name


async def test_expired_and_future_tokens(client, user, settings) -> None:
    now = datetime.now(UTC)
    expired = issue_access_token(
        settings, user_id=uuid.UUID(user["id"]), version=0, now=now - timedelta(minutes=16)
    )
    r = await client.get("/api/v1/auth/me", headers=bearer(expired))
    assert r.status_code == 401 and r.json()["error"]["message"] == "access token expired"
    # Within the 30 s leeway the token still works; past it, it does not.
    almost = issue_access_token(
        settings, user_id=uuid.UUID(user["id"]), version=0, now=now - timedelta(seconds=910)
    )
    assert await _status(client, almost) == 200
    future = _sign(_claims(user, settings, iat=int(time.time()) + 3600))
    assert await _status(client, future) == 401


async def test_eddsa_sso_token_is_not_an_access_token(client, user, app, settings) -> None:
    from controlplane.sso.service import issue_sso_token

    issued = await issue_sso_token(
        app.state.cp,
        app.state.cp.sealer,
        settings,
        user_id=user["id"],
        tenant_id=uuid.uuid4(),
        subdomain="acme",
    )
    assert await _status(client, issued["token"]) == 401


async def test_no_or_malformed_authorization(client, user) -> None:
    r = await client.get("/api/v1/auth/me")
    assert r.status_code == 401 and r.json()["error"]["message"] == "missing bearer token"
    r = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Basic {user['tokens']['access_token']}"}
    )
    assert r.status_code == 401


async def test_user_token_on_admin_route_is_403(client, user) -> None:
    headers = bearer(user["tokens"]["access_token"])
    for path in ("/api/v1/users", "/api/v1/nodes", "/api/v1/audit"):
        r = await client.get(path, headers=headers)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["message"] == "admin only"
    r = await client.get("/api/v1/users", headers=bearer("not-a-token"))
    assert r.status_code == 401


async def test_admin_token_is_not_a_user_token(client) -> None:
    from tests.conftest import ADMIN_TOKEN

    assert await _status(client, ADMIN_TOKEN) == 401
