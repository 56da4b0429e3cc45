"""Tiny HTTP apps "inside" running containers, on their 127.x.y.z loopback addresses.

With ``loopback_ips`` each running container gets an address in 127.0.0.0/8 (Linux routes
the whole /8 to lo, so any of them can be bound) and answers HTTP there with its hostname
and VMID, so routing tests (Caddy, health checks) reach a real socket per tenant.

With an `SsoCheck` (the demo sets one) the app also answers `/sso?token=...` as a tenant's
app would: it verifies the control plane's SSO token against the control plane's JWKS
(`/.well-known/jwks.json`; EdDSA, issuer PUBLIC_URL, audience `{hostname}.{base domain}`)
and shows the user as logged in.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt

from .models import Container
from .server import HttpServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SsoCheck:
    jwks_url: str
    issuer: str
    base_domain: str


async def sso_page(ct: Container, sso: SsoCheck, query: str) -> tuple[int, str]:
    """(status, HTML) for `/sso?token=...`: who the verified token says the user is."""
    token = parse_qs(query).get("token", [""])[0]
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            keys = (await client.get(sso.jwks_url)).json()["keys"]
        kid = jwt.get_unverified_header(token).get("kid")
        key = next(k for k in keys if k.get("kid") == kid)
        claims = jwt.decode(
            token,
            jwt.PyJWK(key).key,
            algorithms=["EdDSA"],
            audience=f"{ct.hostname}.{sso.base_domain}",
            issuer=sso.issuer,
        )
    except (httpx.HTTPError, jwt.PyJWTError, StopIteration, KeyError, ValueError) as exc:
        return 401, f"<h1>Not logged in</h1><p>{html.escape(type(exc).__name__)}</p>"
    who = html.escape(str(claims.get("email") or claims["sub"]))
    return 200, (
        f"<h1>{html.escape(ct.hostname)}</h1><p>Logged in as <b>{who}</b> "
        "(SSO token verified against the control plane's JWKS).</p>"
    )


def guest_app(ct: Container, sso: SsoCheck | None = None) -> Any:
    """An ASGI app answering every request with the container's identity."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        content_type = b"application/json"
        status = 200
        if sso is not None and scope["path"] == "/sso":
            status, body = await sso_page(ct, sso, scope.get("query_string", b"").decode())
            content_type = b"text/html; charset=utf-8"
        else:
            body = json.dumps({"hostname": ct.hostname, "vmid": ct.vmid, "path": scope["path"]})
        payload = body.encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-pvesim-vmid", str(ct.vmid).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


class GuestApps:
    def __init__(self) -> None:
        self._servers: dict[int, HttpServer] = {}
        self.sso: SsoCheck | None = None  # set by the demo: /sso verifies tokens

    def port_of(self, vmid: int) -> int | None:
        server = self._servers.get(vmid)
        return server.port if server else None

    async def start(self, ct: Container, port: int) -> None:
        await self.stop(ct.vmid)
        if ct.ip is None:
            return
        server = HttpServer(guest_app(ct, self.sso), close_on_error=False)
        try:
            await server.start(ct.ip, port)
        except OSError as exc:  # a busy port must not fail the container's start task
            log.warning("container %s: cannot serve on %s:%s: %s", ct.vmid, ct.ip, port, exc)
            return
        self._servers[ct.vmid] = server

    async def stop(self, vmid: int) -> None:
        server = self._servers.pop(vmid, None)
        if server is not None:
            await server.close()

    async def close(self) -> None:
        for vmid in list(self._servers):
            await self.stop(vmid)
