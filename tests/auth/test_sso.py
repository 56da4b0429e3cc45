"""SSO into tenant apps: tokens verified with the published JWKS, single redemption."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from controlplane.sso.service import issue_sso_token
from tests.auth.conftest import bearer, login, register
from tests.conftest import ADMIN_TOKEN, flush_audit


async def make_tenant(
    app: object, owner_id: str | None, subdomain: str, status: str = "active"
) -> str:
    tenant_id = str(uuid.uuid4())
    await app.state.cp.db.execute(  # type: ignore[attr-defined]
        "INSERT INTO tenants (id, name, subdomain, owner_user_id, ram_mb, cores, status)"
        " VALUES (%(id)s, %(sub)s, %(sub)s, %(owner)s, 512, 1, %(status)s)",
        {"id": tenant_id, "sub": subdomain, "owner": owner_id, "status": status},
    )
    return tenant_id


async def _jwks(client: httpx.AsyncClient) -> dict[str, jwt.PyJWK]:
    r = await client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert "max-age" in r.headers["cache-control"]
    return {k["kid"]: jwt.PyJWK(k) for k in r.json()["keys"]}


def _verify(token: str, keys: dict[str, jwt.PyJWK], audience: str) -> dict:
    """What a tenant app does: pick the key by kid, check signature, audience, issuer."""
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.decode(
        token,
        keys[kid],
        algorithms=["EdDSA"],
        audience=audience,
        issuer="http://localhost:8080",
        options={"require": ["exp", "iat", "jti", "aud", "iss", "sub"]},
    )


async def test_issue_and_verify_with_jwks(client: httpx.AsyncClient, user: dict, app) -> None:
    tenant_id = await make_tenant(app, user["id"], "acme")
    r = await client.post(
        f"/api/v1/user/tenants/{tenant_id}/sso-token",
        headers=bearer(user["tokens"]["access_token"]),
    )
    assert r.status_code == 200, r.text
    issued = r.json()
    assert issued["expires_in"] == 60 and r.headers["cache-control"] == "no-store"
    url = urlsplit(issued["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "acme.localhost", "/sso")
    assert parse_qs(url.query)["token"] == [issued["token"]]

    keys = await _jwks(client)
    assert len(keys) == 1
    (jwk,) = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["alg"] == "EdDSA"
    assert "d" not in jwk  # the public half only
    claims = _verify(issued["token"], keys, "acme.localhost")
    assert claims["sub"] == user["id"] and claims["tid"] == tenant_id
    assert claims["email"] == "ada@example.com"
    assert claims["exp"] - claims["iat"] == 60
    # Another tenant's app refuses it.
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(issued["token"], keys, "other.localhost")
    # Each token has its own id.
    again = await client.post(
        f"/api/v1/user/tenants/{tenant_id}/sso-token",
        headers=bearer(user["tokens"]["access_token"]),
    )
    assert _verify(again.json()["token"], keys, "acme.localhost")["jti"] != claims["jti"]
    await flush_audit(app)
    r = await client.get(
        "/api/v1/audit", params={"action": "tenant.sso_token"}, headers=bearer(ADMIN_TOKEN)
    )
    assert r.json()["total"] == 2 and issued["token"] not in r.text


async def test_redeem_once(client: httpx.AsyncClient, user: dict, app) -> None:
    tenant_id = await make_tenant(app, user["id"], "acme")
    token = (
        await client.post(
            f"/api/v1/user/tenants/{tenant_id}/sso-token",
            headers=bearer(user["tokens"]["access_token"]),
        )
    ).json()["token"]
    r = await client.post(
        "/api/v1/sso/redeem", json={"token": token, "audience": "other.localhost"}
    )
    assert r.status_code == 401 and "another audience" in r.json()["error"]["message"]
    r = await client.post("/api/v1/sso/redeem", json={"token": token, "audience": "acme.localhost"})
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == user["id"] and r.json()["tid"] == tenant_id
    r = await client.post("/api/v1/sso/redeem", json={"token": token, "audience": "acme.localhost"})
    assert r.status_code == 409
    r = await client.post("/api/v1/sso/redeem", json={"token": "x.y.z", "audience": "a.b"})
    assert r.status_code == 401
    r = await client.post("/api/v1/sso/redeem", json={"token": token})
    assert r.status_code == 422


async def test_expired_after_60_seconds(client: httpx.AsyncClient, app, settings) -> None:
    state = app.state.cp
    now = datetime.now(UTC)

    async def issued_at(when: datetime) -> str:
        result = await issue_sso_token(
            state,
            state.sealer,
            settings,
            user_id=uuid.uuid4(),
            tenant_id=uuid.uuid4(),
            subdomain="acme",
            now=when,
        )
        return result["token"]

    keys = await _jwks(client)
    fresh = await issued_at(now - timedelta(seconds=50))
    stale = await issued_at(now - timedelta(seconds=70))
    assert _verify(fresh, keys, "acme.localhost")
    with pytest.raises(jwt.ExpiredSignatureError):
        _verify(stale, keys, "acme.localhost")
    r = await client.post("/api/v1/sso/redeem", json={"token": stale, "audience": "acme.localhost"})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    r = await client.post("/api/v1/sso/redeem", json={"token": fresh, "audience": "acme.localhost"})
    assert r.status_code == 200


async def test_not_yours_is_404_and_inactive_is_409(
    client: httpx.AsyncClient, user: dict, app
) -> None:
    await register(client, "bob@example.com")
    bob = await login(client, "bob@example.com")
    bobs = await make_tenant(app, None, "bobsite")
    await app.state.cp.db.execute(
        "UPDATE tenants SET owner_user_id = (SELECT id FROM users WHERE email = 'bob@example.com')"
        " WHERE id = %(id)s",
        {"id": bobs},
    )
    ada = bearer(user["tokens"]["access_token"])
    r = await client.post(f"/api/v1/user/tenants/{bobs}/sso-token", headers=ada)
    assert r.status_code == 404
    r = await client.post(f"/api/v1/user/tenants/{uuid.uuid4()}/sso-token", headers=ada)
    assert r.status_code == 404
    r = await client.post(
        f"/api/v1/user/tenants/{bobs}/sso-token", headers=bearer(bob["access_token"])
    )
    assert r.status_code == 200
    suspended = await make_tenant(app, user["id"], "sleepy", status="suspended")
    r = await client.post(f"/api/v1/user/tenants/{suspended}/sso-token", headers=ada)
    assert r.status_code == 409 and "suspended" in r.json()["error"]["message"]
    r = await client.post(f"/api/v1/user/tenants/{suspended}/sso-token")
    assert r.status_code == 401
    r = await client.post("/api/v1/user/tenants/not-a-uuid/sso-token", headers=ada)
    assert r.status_code == 422


async def test_key_made_once_and_sealed(client: httpx.AsyncClient, app, settings) -> None:
    from controlplane.sso.keys import signing_key

    db, sealer = app.state.cp.db, app.state.cp.sealer
    keys = await _jwks(client)
    again = await _jwks(client)
    assert keys.keys() == again.keys()
    # A second replica (no cached key) finds the same key instead of making another.
    assert (await signing_key(db, sealer)).kid in keys
    rows = await db.fetch_all("SELECT kid, private_key_sealed FROM sso_keys")
    assert len(rows) == 1 and rows[0]["private_key_sealed"].startswith("v1:")


async def test_racing_replicas_make_one_key(app) -> None:
    import asyncio

    from controlplane.sso.keys import signing_key

    db, sealer = app.state.cp.db, app.state.cp.sealer
    made = await asyncio.gather(*(signing_key(db, sealer) for _ in range(5)))
    assert len({k.kid for k in made}) == 1
    assert await db.fetch_val("SELECT count(*) FROM sso_keys") == 1
