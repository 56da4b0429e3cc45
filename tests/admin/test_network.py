"""The Network page: WireGuard peers through the dashboard (WireGuard enabled here)."""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path

import pytest

from controlplane.config import Settings
from controlplane.wireguard.keys import generate_keypair
from tests.admin.conftest import ORIGIN, SETUP_TOKEN, Browser, audit_rows
from tests.conftest import make_settings

_, HUB_PUBLIC = generate_keypair()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        setup_token=SETUP_TOKEN,
        admin_origin=ORIGIN,
        wg_hub_public_key=HUB_PUBLIC,
        wg_endpoint="vpn.example.com:51820",
        wg_subnet="10.66.0.0/24",
        wg_interface="wgcp-none",  # no such interface: the syncer idles
        wg_uapi_dir=str(tmp_path),
    )


def _error(html: str, field: str) -> str:
    match = re.search(rf'data-error-for="{field}">([^<]*)<', html)
    assert match, field
    return match.group(1)


async def test_peer_lifecycle(dash: Browser, app: object) -> None:
    db = app.state.cp.db  # type: ignore[attr-defined]
    r = await dash.open("/admin/network")
    assert r.status_code == 200 and "vpn.example.com:51820" in r.text and "No peers yet" in r.text

    r = await dash.post_form(
        "/admin/network/peers",
        {"name": "alice-laptop", "allowed_ips": "192.168.10.0/24\n", "enabled": "on"},
        htmx=False,
    )
    assert r.status_code == 303, r.text
    peer_id = r.headers["location"].rsplit("/", 1)[1]
    r = await dash.open(f"/admin/network/peers/{peer_id}")
    assert r.status_code == 200 and "10.66.0.2" in r.text and "192.168.10.0/24" in r.text
    assert "PrivateKey" not in r.text and 'id="peer-qr"' not in r.text  # not shown until asked

    r = await dash.http.get(f"/admin/network/peers/{peer_id}/config")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert 'filename="wg-alice-laptop.conf"' in r.headers["content-disposition"]
    assert "PrivateKey = " in r.text and f"PublicKey = {HUB_PUBLIC}" in r.text
    r = await dash.hx_get(f"/admin/network/peers/{peer_id}/qr")
    assert r.status_code == 200
    svg = base64.b64decode(re.search(r'data:image/svg\+xml;base64,([^"]+)"', r.text).group(1))  # type: ignore[union-attr]
    assert svg.lstrip().startswith(b"<?xml") or b"<svg" in svg[:200]

    r = await dash.post_form(
        f"/admin/network/peers/{peer_id}", {"name": "alice", "allowed_ips": "", "notes": "x"}
    )
    assert r.status_code == 204, r.text
    row = await db.fetch_one("SELECT name, notes, allowed_ips::text[] AS ips FROM wireguard_peers")
    assert row["name"] == "alice" and row["notes"] == "x" and row["ips"] == ["10.66.0.2/32"]

    assert (await dash.post_form(f"/admin/network/peers/{peer_id}/disable")).status_code == 204
    assert await db.fetch_val("SELECT enabled FROM wireguard_peers") is False
    r = await dash.open("/admin/network")
    assert 'data-action="enable"' in r.text
    assert (await dash.post_form(f"/admin/network/peers/{peer_id}/enable")).status_code == 204
    assert (await dash.post_form(f"/admin/network/peers/{peer_id}/delete")).status_code == 204
    assert await db.fetch_val("SELECT count(*) FROM wireguard_peers") == 0

    rows = await audit_rows(
        app,
        "SELECT action FROM audit_log WHERE target_type = 'wireguard_peer' ORDER BY id",
        expect=7,
    )
    actions = [a["action"] for a in rows]
    assert actions == [
        "wireguard_peer.create",
        "wireguard_peer.export",
        "wireguard_peer.export",
        "wireguard_peer.update",
        "wireguard_peer.disable",
        "wireguard_peer.enable",
        "wireguard_peer.delete",
    ]
    details = await db.fetch_all("SELECT details::text AS d FROM audit_log")
    assert not any("PrivateKey" in d["d"] for d in details)


async def test_peer_form_errors(dash: Browser, app: object) -> None:
    _, own_key = generate_keypair()
    r = await dash.post_form(
        "/admin/network/peers", {"name": "", "allowed_ips": "10.0.0.1/8"}, htmx=False
    )
    assert r.status_code == 422
    assert _error(r.text, "name") and "host bits" in _error(r.text, "allowed_ips")
    r = await dash.post_form(
        "/admin/network/peers", {"name": "x", "allowed_ips": "10.66.0.0/25"}, htmx=False
    )
    assert r.status_code == 422 and "WG_SUBNET" in _error(r.text, "allowed_ips")
    r = await dash.post_form(
        "/admin/network/peers", {"name": "bob", "public_key": own_key}, htmx=False
    )
    assert r.status_code == 303
    r = await dash.post_form(
        "/admin/network/peers", {"name": "bob2", "public_key": own_key}, htmx=False
    )
    assert r.status_code == 409 and "already exists" in _error(r.text, "public_key")
    peer_id = await app.state.cp.db.fetch_val("SELECT id FROM wireguard_peers")  # type: ignore[attr-defined]
    r = await dash.open(f"/admin/network/peers/{peer_id}")
    assert "brought its own public key" in r.text and "/config" not in r.text
    r = await dash.http.get(f"/admin/network/peers/{peer_id}/config")
    assert r.status_code == 409
    missing = uuid.uuid4()
    assert (await dash.open(f"/admin/network/peers/{missing}")).status_code == 404
    assert (await dash.post_form(f"/admin/network/peers/{missing}/delete")).status_code == 404
    assert (await dash.post_form(f"/admin/network/peers/{peer_id}/explode")).status_code == 404
