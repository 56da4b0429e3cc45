"""Per-IP rate limits, and client addresses that a forged X-Forwarded-For cannot move."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest

from controlplane.web.clientip import parse_networks, resolve_client_ip
from controlplane.web.ratelimit import limit_key
from tests.auth.conftest import CHEAP_ARGON2, PASSWORD, client_for
from tests.conftest import flush_audit, make_settings

PROXY = "10.0.0.5"


@pytest.fixture
async def limited_app(database_url: str) -> AsyncIterator[object]:
    """The app with the production limits (10/minute tight, 300/minute API)."""
    from controlplane.app import create_app

    settings = make_settings(database_url, trusted_proxies=f"{PROXY},10.1.0.0/16", **CHEAP_ARGON2)
    assert settings.rate_limit_auth == "10/minute" and settings.rate_limit_api == "300/minute"
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def _login_body() -> dict:
    return {"email": "nobody@example.com", "password": PASSWORD}


async def test_tight_limit_on_login_with_retry_after(limited_app: object) -> None:
    async with client_for(limited_app, "198.51.100.7") as c:
        for _ in range(10):
            r = await c.post("/api/v1/auth/login", json=_login_body())
            assert r.status_code == 401
        r = await c.post("/api/v1/auth/login", json=_login_body())
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        err = r.json()["error"]
        assert err["status"] == 429 and err["code"] == "rate_limited"
        assert r.json()["request_id"] == r.headers["x-request-id"]
        # Each tight path counts on its own, and the rest of the API is not affected.
        r = await c.post("/api/v1/auth/refresh", json={"refresh_token": "x"})
        assert r.status_code == 401
        r = await c.get("/api/v1/auth/me")
        assert r.status_code == 401
    async with client_for(limited_app, "198.51.100.8") as other:
        r = await other.post("/api/v1/auth/login", json=_login_body())
        assert r.status_code == 401


async def test_register_refresh_password_are_tight_too(limited_app: object) -> None:
    for path in ("/api/v1/auth/register", "/api/v1/auth/refresh", "/api/v1/auth/password"):
        async with client_for(limited_app, "198.51.100.20") as c:
            codes = [(await c.post(path, json={})).status_code for _ in range(11)]
        assert codes[:10] == [codes[0]] * 10 and codes[0] in (401, 422), (path, codes)
        assert codes[10] == 429, path


async def test_api_limit(limited_app: object) -> None:
    async with client_for(limited_app, "198.51.100.9") as c:
        for _ in range(300):
            assert (await c.get("/api/v1/auth/me")).status_code == 401
        r = await c.get("/api/v1/auth/me")
        assert r.status_code == 429 and "retry-after" in r.headers
        # Outside /api (health checks, JWKS) nothing is limited.
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/.well-known/jwks.json")).status_code == 200


async def test_forged_forwarded_for_from_untrusted_peer_is_ignored(limited_app: object) -> None:
    async with client_for(limited_app, "198.51.100.30") as c:
        for i in range(10):
            r = await c.post(
                "/api/v1/auth/login",
                json=_login_body(),
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
            assert r.status_code == 401
        r = await c.post(
            "/api/v1/auth/login", json=_login_body(), headers={"X-Forwarded-For": "203.0.113.99"}
        )
        assert r.status_code == 429
    await flush_audit(limited_app)
    db = limited_app.state.cp.db  # type: ignore[attr-defined]
    ips = await db.fetch_all("SELECT DISTINCT client_ip FROM audit_log")
    assert [row["client_ip"] for row in ips] == ["198.51.100.30"]


async def test_forwarded_for_from_trusted_proxy_is_honoured(limited_app: object) -> None:
    async with client_for(limited_app, PROXY) as proxy:
        for _ in range(10):
            r = await proxy.post(
                "/api/v1/auth/login", json=_login_body(), headers={"X-Forwarded-For": "203.0.113.1"}
            )
            assert r.status_code == 401
        r = await proxy.post(
            "/api/v1/auth/login", json=_login_body(), headers={"X-Forwarded-For": "203.0.113.1"}
        )
        assert r.status_code == 429
        # Another client behind the same proxy has its own budget, even if it forges a
        # left-most address: the right-most untrusted hop is what counts.
        r = await proxy.post(
            "/api/v1/auth/login",
            json=_login_body(),
            headers={"X-Forwarded-For": "203.0.113.1, 203.0.113.2, 10.1.4.4"},
        )
        assert r.status_code == 401
    await flush_audit(limited_app)
    db = limited_app.state.cp.db  # type: ignore[attr-defined]
    ips = await db.fetch_all("SELECT DISTINCT client_ip FROM audit_log ORDER BY 1")
    assert [row["client_ip"] for row in ips] == ["203.0.113.1", "203.0.113.2"]


async def test_limits_are_per_app(database_url: str) -> None:
    """A second app (another replica, another test) starts counting from zero."""
    from controlplane.app import create_app

    settings = make_settings(database_url, rate_limit_auth="2/minute", **CHEAP_ARGON2)
    for _ in range(2):
        app = create_app(settings)
        async with app.router.lifespan_context(app), client_for(app) as c:
            codes = [
                (await c.post("/api/v1/auth/login", json=_login_body())).status_code
                for _ in range(3)
            ]
        assert codes == [401, 401, 429]


TRUSTED = parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("198.51.100.1", ["203.0.113.9"], "198.51.100.1"),  # untrusted peer: header ignored
        ("10.0.0.1", [], "10.0.0.1"),  # trusted, no header: the proxy itself
        ("10.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        ("10.0.0.1", ["1.2.3.4, 203.0.113.9"], "203.0.113.9"),  # forged left part ignored
        ("10.0.0.1", ["1.2.3.4, 203.0.113.9, 10.2.2.2"], "203.0.113.9"),  # proxy chain
        ("10.0.0.1", ["1.2.3.4", "203.0.113.9"], "203.0.113.9"),  # two header lines
        ("10.0.0.1", ["10.9.9.9, 10.2.2.2"], "10.9.9.9"),  # all trusted: left-most
        ("10.0.0.1", ["garbage, 10.2.2.2"], "10.2.2.2"),  # garbage: last vouched-for hop
        ("10.0.0.1", ["203.0.113.9:5555"], "203.0.113.9"),
        ("10.0.0.1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["203.0.113.9"], "203.0.113.9"),  # v4-mapped peer
        ("2001:db8:ffff::1", ["2001:db8::7"], "2001:db8::7"),
        ("testclient", ["203.0.113.9"], "testclient"),
        (None, ["203.0.113.9"], None),
    ],
)
def test_resolve_client_ip(peer: str | None, xff: list[str], expected: str | None) -> None:
    assert resolve_client_ip(peer, xff, TRUSTED) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert resolve_client_ip("10.0.0.1", ["203.0.113.9"], ()) == "10.0.0.1"


def test_ipv6_clients_count_per_64() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert ipaddress.ip_network(limit_key("2001:db8:1:2::1")).prefixlen == 64
    assert limit_key("192.0.2.1") == "192.0.2.1"
    assert limit_key(None) == "unknown"


def test_settings_refuse_bad_rates_and_proxies(database_url: str) -> None:
    from controlplane.config import SettingsError, load_settings

    for field, value in (
        ("rate_limit_auth", "ten a minute"),
        ("rate_limit_api", ""),
        ("trusted_proxies", "10.0.0.0/8,proxy.example"),
    ):
        with pytest.raises(SettingsError) as info:
            load_settings(_env_file=None, **{field: value})
        assert field.upper() in str(info.value)


async def test_caddy_ask_has_its_own_limit_and_never_spends_the_api_one(
    limited_app: object,
) -> None:
    """300 random-SNI handshakes must not block certificate issuance (or the API) for a minute."""
    async with client_for(limited_app, "198.51.100.40") as c:
        for i in range(400):
            r = await c.get("/api/v1/caddy/ask", params={"domain": f"r{i}.localhost"})
            assert r.status_code == 404, (i, r.text)
        assert (await c.get("/api/v1/auth/me")).status_code == 401  # the API bucket is intact


async def test_caddy_ask_limit_is_a_setting(database_url: str) -> None:
    from controlplane.app import create_app

    app = create_app(make_settings(database_url, rate_limit_ask="20/minute"))
    async with app.router.lifespan_context(app), client_for(app, "198.51.100.41") as c:
        for i in range(20):
            assert (
                await c.get("/api/v1/caddy/ask", params={"domain": f"x{i}.localhost"})
            ).status_code == 404
        r = await c.get("/api/v1/caddy/ask", params={"domain": "y.localhost"})
        assert r.status_code == 429 and "retry-after" in r.headers
