"""Webhook targets: by default only public addresses. Addresses written in the URL are
refused at registration (API and dashboard), names are checked at each delivery."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from controlplane.config import Settings
from controlplane.webhooks import targets
from tests.conftest import make_settings
from tests.webhooks.conftest import wait_for
from tests.webhooks.receiver import Receiver


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The default: webhook_allow_private is off.
    return make_settings(database_url, webhook_poll_seconds=0.02, webhook_retry_base_s=30.0)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",
        "http://api.localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://100.64.0.1/hooks",  # shared address space (CGNAT)
        "http://169.254.169.254/latest/meta-data",  # the cloud's metadata service
        "http://[::1]:9000/hooks",
        "http://[fd00::1]/hooks",
        "http://[::ffff:10.0.0.1]/hooks",
        "http://0.0.0.0/hooks",
    ],
)
async def test_a_non_public_address_is_refused_at_registration(
    admin: httpx.AsyncClient, url: str
) -> None:
    r = await admin.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert [f["field"] for f in error["fields"]] == ["url"]
    assert "WEBHOOK_ALLOW_PRIVATE" in error["fields"][0]["message"]
    assert (await admin.get("/api/v1/webhooks")).json()["total"] == 0


async def test_public_addresses_and_names_are_accepted(admin: httpx.AsyncClient) -> None:
    for url in ("https://93.184.216.34/hooks", "https://hooks.example.com/cp"):
        r = await admin.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
        assert r.status_code == 201, r.text


async def test_an_update_to_a_private_address_is_refused_and_changes_nothing(
    admin: httpx.AsyncClient,
) -> None:
    r = await admin.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/a",
                                                   "events": ["*"]})  # fmt: skip
    hook = r.json()
    r = await admin.put(f"/api/v1/webhooks/{hook['id']}", json={"url": "http://10.0.0.7/a"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "url"
    r = await admin.get(f"/api/v1/webhooks/{hook['id']}")
    assert r.json()["url"] == "https://hooks.example.com/a"


async def test_a_name_that_resolves_to_loopback_is_refused_at_delivery(
    admin: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = await Receiver().start()
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "receiver.test":  # a name an attacker points at the control plane's host
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    try:
        url = receiver.url.replace("127.0.0.1", "receiver.test")
        r = await admin.post("/api/v1/webhooks", json={"url": url, "events": ["node.*"]})
        assert r.status_code == 201, r.text
        hook = r.json()
        await app.state.cp.db.execute("SELECT webhook_enqueue('node.created', '{}'::jsonb)")

        async def refused() -> Any:
            r = await admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries")
            items = r.json()["items"]
            return items if items and items[0]["last_error"] else None

        items = await wait_for(refused, "the refused delivery")
        assert "receiver.test resolves to 127.0.0.1" in items[0]["last_error"]
        assert "WEBHOOK_ALLOW_PRIVATE" in items[0]["last_error"]
        assert receiver.requests == []  # nothing was sent
    finally:
        await receiver.stop()


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://hooks.example.com/x", False),
        ("https://8.8.8.8/x", False),
        ("https://[2001:4860:4860::8888]/x", False),
        ("http://LOCALHOST./x", True),
        ("http://[fe80::1%25eth0]/x", True),
        ("http://224.0.0.1/x", True),
    ],
)
def test_written_addresses(url: str, refused: bool) -> None:
    assert (targets.written_refusal(url) is not None) is refused
