"""`/api/v1/wireguard/peers`: nine routes, happy paths, invalid input, auth, conflicts, missing."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from pathlib import Path

import httpx
import pytest
import segno

from controlplane.wireguard.keys import generate_keypair, public_key_of
from tests.conftest import ADMIN_TOKEN, flush_audit
from tests.wireguard.conftest import ENDPOINT, HUB_PUBLIC, wg_settings

PEERS = "/api/v1/wireguard/peers"


async def test_create_get_list_update_enable_disable_delete(
    admin: httpx.AsyncClient, app: object
) -> None:
    r = await admin.post(PEERS, json={"name": "laptop", "notes": "Ann's laptop"})
    assert r.status_code == 201, r.text
    peer = r.json()
    assert r.headers["location"] == f"{PEERS}/{peer['id']}"
    assert peer["address"] == "10.66.0.2"  # .1 is the hub
    assert peer["allowed_ips"] == ["10.66.0.2/32"]
    assert peer["has_private_key"] is True and peer["enabled"] is True
    assert set(peer) == {
        "id",
        "name",
        "public_key",
        "has_private_key",
        "address",
        "allowed_ips",
        "enabled",
        "notes",
        "tenant_id",
        "user_id",
        "created_at",
        "updated_at",
    }  # no private key, sealed or not
    assert len(base64.b64decode(peer["public_key"])) == 32

    second = (await admin.post(PEERS, json={"name": "phone", "enabled": False})).json()
    assert second["address"] == "10.66.0.3" and second["enabled"] is False

    r = await admin.get(f"{PEERS}/{peer['id']}")
    assert r.status_code == 200 and r.json() == peer

    r = await admin.get(PEERS, params={"limit": 1})
    page = r.json()
    assert r.status_code == 200 and page["total"] == 2 and page["limit"] == 1
    assert [p["name"] for p in page["items"]] == ["laptop"]
    r = await admin.get(PEERS, params={"limit": 1, "offset": 1})
    assert [p["name"] for p in r.json()["items"]] == ["phone"]
    r = await admin.get(PEERS, params={"enabled": "false"})
    assert [p["name"] for p in r.json()["items"]] == ["phone"]

    r = await admin.put(
        f"{PEERS}/{peer['id']}",
        json={
            "name": "laptop-2",
            "allowed_ips": ["192.168.50.0/24", "10.66.0.2/32"],
            "notes": None,
        },
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["name"] == "laptop-2" and updated["notes"] is None
    assert updated["allowed_ips"] == ["10.66.0.2/32", "192.168.50.0/24"]
    assert updated["address"] == "10.66.0.2" and updated["public_key"] == peer["public_key"]

    r = await admin.post(f"{PEERS}/{peer['id']}/disable")
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = await admin.post(f"{PEERS}/{peer['id']}/disable")  # already disabled: same answer
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = await admin.post(f"{PEERS}/{peer['id']}/enable")
    assert r.status_code == 200 and r.json()["enabled"] is True

    r = await admin.delete(f"{PEERS}/{peer['id']}")
    assert r.status_code == 204
    assert (await admin.get(f"{PEERS}/{peer['id']}")).status_code == 404
    # The freed address is the lowest free one again.
    assert (await admin.post(PEERS, json={"name": "again"})).json()["address"] == "10.66.0.2"

    await flush_audit(app)
    r = await admin.get("/api/v1/audit", params={"target_id": peer["id"]})
    actions = [e["action"] for e in r.json()["items"]]
    assert actions == [
        "wireguard_peer.delete",
        "wireguard_peer.enable",
        "wireguard_peer.disable",
        "wireguard_peer.disable",
        "wireguard_peer.update",
        "wireguard_peer.create",
    ]


async def test_private_key_is_sealed_and_only_leaves_in_the_config(
    admin: httpx.AsyncClient, app: object
) -> None:
    peer = (await admin.post(PEERS, json={"name": "sealed"})).json()
    db = app.state.cp.db  # type: ignore[attr-defined]
    sealed = await db.fetch_val(
        "SELECT private_key_sealed FROM wireguard_peers WHERE id = %(id)s", {"id": peer["id"]}
    )
    assert sealed.startswith("v1:")

    r = await admin.get(f"{PEERS}/{peer['id']}/config")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-disposition"] == 'attachment; filename="wg-sealed.conf"'
    conf = dict(line.split(" = ", 1) for line in r.text.splitlines() if " = " in line)
    private = conf["PrivateKey"]
    assert private not in sealed
    assert public_key_of(private) == peer["public_key"]  # the pair belongs together
    assert conf["Address"] == "10.66.0.2/32"
    assert conf["PublicKey"] == HUB_PUBLIC
    assert conf["Endpoint"] == ENDPOINT
    assert conf["AllowedIPs"] == "10.66.0.0/24"
    assert "DNS" not in conf
    assert r.text.index("[Interface]") < r.text.index("[Peer]")

    await flush_audit(app)
    audit = (await admin.get("/api/v1/audit", params={"target_id": peer["id"]})).text
    assert private not in audit
    assert "wireguard_peer.export" in audit
    assert private not in (await admin.get(f"{PEERS}/{peer['id']}")).text
    assert private not in (await admin.get(PEERS)).text


async def test_qr_code_png_and_svg_of_the_config(admin: httpx.AsyncClient) -> None:
    peer = (await admin.post(PEERS, json={"name": "qr"})).json()
    conf = (await admin.get(f"{PEERS}/{peer['id']}/config")).text

    r = await admin.get(f"{PEERS}/{peer['id']}/qr")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert r.headers["cache-control"] == "no-store"
    expected = io.BytesIO()
    segno.make(conf, error="m", micro=False).save(expected, kind="png", scale=4, border=4)
    assert r.content == expected.getvalue()  # the QR code encodes exactly the config file

    r = await admin.get(f"{PEERS}/{peer['id']}/qr", params={"format": "svg"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content
    r = await admin.get(f"{PEERS}/{peer['id']}/qr", headers={"Accept": "image/svg+xml"})
    assert r.headers["content-type"].startswith("image/svg+xml")
    r = await admin.get(
        f"{PEERS}/{peer['id']}/qr", params={"format": "png"}, headers={"Accept": "image/svg+xml"}
    )
    assert r.headers["content-type"] == "image/png"
    r = await admin.get(f"{PEERS}/{peer['id']}/qr", params={"scale": 8})
    assert len(r.content) > len(expected.getvalue())


async def test_client_supplied_key_has_no_config(admin: httpx.AsyncClient, app: object) -> None:
    _, public = generate_keypair()
    r = await admin.post(PEERS, json={"name": "byok", "public_key": public})
    assert r.status_code == 201, r.text
    peer = r.json()
    assert peer["public_key"] == public and peer["has_private_key"] is False
    db = app.state.cp.db  # type: ignore[attr-defined]
    assert (
        await db.fetch_val(
            "SELECT private_key_sealed FROM wireguard_peers WHERE id = %(id)s", {"id": peer["id"]}
        )
        is None
    )
    for path in ("config", "qr"):
        r = await admin.get(f"{PEERS}/{peer['id']}/{path}")
        assert r.status_code == 409, path
        err = r.json()["error"]
        assert err["code"] == "no_private_key" and "own public key" in err["message"]

    r = await admin.post(PEERS, json={"name": "same", "public_key": public})
    assert r.status_code == 409
    assert r.json()["error"]["fields"][0]["field"] == "public_key"
    r = await admin.post(PEERS, json={"name": "hub", "public_key": HUB_PUBLIC})
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "public_key"


async def test_invalid_input_names_the_field(admin: httpx.AsyncClient) -> None:
    zero = base64.b64encode(bytes(32)).decode()
    short = base64.b64encode(bytes(range(1, 31))).decode()
    cases = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a", "public_key": "not base64 at all, but 44 characters long!!"}, "public_key"),
        ({"name": "a", "public_key": short}, "public_key"),
        ({"name": "a", "public_key": zero}, "public_key"),
        ({"name": "a", "allowed_ips": ["192.168.1.5/24"]}, "allowed_ips.0"),
        ({"name": "a", "allowed_ips": ["nonsense"]}, "allowed_ips.0"),
        ({"name": "a", "allowed_ips": ["10.1.0.0/16", "10.1.0.0/16"]}, "allowed_ips"),
        ({"name": "a", "allowed_ips": "10.1.0.0/16"}, "allowed_ips"),
        ({"name": "a", "allowed_ips": ["10.66.0.128/25"]}, "allowed_ips"),  # inside WG_SUBNET
        # Catch-alls: the hub would send (nearly) all its traffic to this one peer.
        ({"name": "a", "allowed_ips": ["0.0.0.0/0"]}, "allowed_ips"),
        ({"name": "a", "allowed_ips": ["::/0"]}, "allowed_ips"),
        ({"name": "a", "allowed_ips": ["128.0.0.0/1"]}, "allowed_ips"),
        ({"name": "a", "allowed_ips": ["192.168.0.0/16", "0.0.0.0/7"]}, "allowed_ips"),
        ({"name": "a", "allowed_ips": ["2000::/3"]}, "allowed_ips"),
        ({"name": "a", "tenant_id": "nope"}, "tenant_id"),
        ({"name": "a", "tenant_id": str(uuid.uuid4())}, "tenant_id"),  # no such tenant
        ({"name": "a", "private_key": "x"}, "private_key"),
        ({"name": "a", "enabled": "yes"}, "enabled"),
    ]
    for body, field in cases:
        r = await admin.post(PEERS, json=body)
        assert r.status_code == 422, (body, r.text)
        fields = [f["field"] for f in r.json()["error"]["fields"]]
        assert field in fields, (body, fields)
    assert (await admin.get(PEERS)).json()["total"] == 0  # nothing half-created

    peer = (await admin.post(PEERS, json={"name": "ok"})).json()
    for body, field in [
        ({"name": "bad\tname"}, "name"),
        ({"allowed_ips": ["10.66.0.3/32"]}, "allowed_ips"),  # another address of the subnet
        ({"allowed_ips": ["0.0.0.0/0"]}, "allowed_ips"),
        ({"address": "10.66.0.9"}, "address"),
        ({"notes": "n" * 2001}, "notes"),
    ]:
        r = await admin.put(f"{PEERS}/{peer['id']}", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in [f["field"] for f in r.json()["error"]["fields"]], r.text
    assert (await admin.get(f"{PEERS}/not-a-uuid")).status_code == 422
    assert (
        await admin.get(f"{PEERS}/{peer['id']}/qr", params={"format": "gif"})
    ).status_code == 422
    assert (await admin.get(f"{PEERS}/{peer['id']}/qr", params={"scale": 0})).status_code == 422
    assert (await admin.get(PEERS, params={"limit": 0})).status_code == 422
    r = await admin.post(PEERS, content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 400


async def test_overlapping_allowed_ips_conflict(admin: httpx.AsyncClient) -> None:
    a = (
        await admin.post(PEERS, json={"name": "site-a", "allowed_ips": ["192.168.10.0/24"]})
    ).json()
    r = await admin.post(PEERS, json={"name": "site-b", "allowed_ips": ["192.168.10.128/25"]})
    assert r.status_code == 409
    assert "site-a" in r.json()["error"]["message"]
    assert r.json()["error"]["fields"][0]["field"] == "allowed_ips"
    b = (
        await admin.post(PEERS, json={"name": "site-b", "allowed_ips": ["192.168.20.0/24"]})
    ).json()
    r = await admin.put(f"{PEERS}/{b['id']}", json={"allowed_ips": ["192.168.0.0/16"]})
    assert r.status_code == 409
    # A peer may keep (or re-send) its own networks.
    r = await admin.put(f"{PEERS}/{a['id']}", json={"allowed_ips": ["192.168.10.0/24"]})
    assert r.status_code == 200


async def test_tenant_and_user_links(admin: httpx.AsyncClient, app: object) -> None:
    from tests.caddy.helpers import add_tenant

    tenant = await add_tenant(app.state.cp.db, "linked", "active")  # type: ignore[attr-defined]
    user = uuid.uuid4()
    r = await admin.post(PEERS, json={"name": "t", "tenant_id": str(tenant), "user_id": str(user)})
    assert r.status_code == 201, r.text
    assert r.json()["tenant_id"] == str(tenant) and r.json()["user_id"] == str(user)
    await admin.post(PEERS, json={"name": "other"})
    r = await admin.get(PEERS, params={"tenant_id": str(tenant)})
    assert [p["name"] for p in r.json()["items"]] == ["t"]
    r = await admin.get(PEERS, params={"user_id": str(user)})
    assert [p["name"] for p in r.json()["items"]] == ["t"]


async def test_unauthorised(client: httpx.AsyncClient) -> None:
    pid = uuid.uuid4()
    routes = [
        ("GET", PEERS),
        ("POST", PEERS),
        ("GET", f"{PEERS}/{pid}"),
        ("PUT", f"{PEERS}/{pid}"),
        ("DELETE", f"{PEERS}/{pid}"),
        ("POST", f"{PEERS}/{pid}/enable"),
        ("POST", f"{PEERS}/{pid}/disable"),
        ("GET", f"{PEERS}/{pid}/config"),
        ("GET", f"{PEERS}/{pid}/qr"),
    ]
    for method, path in routes:
        r = await client.request(method, path, json={"name": "x"})
        assert r.status_code == 401, (method, path)
        r = await client.request(
            method,
            path,
            json={"name": "x"},
            headers={"Authorization": "Bearer wrong-token-0123456"},
        )
        assert r.status_code == 401, (method, path)


async def test_missing_peer_is_404_everywhere(admin: httpx.AsyncClient) -> None:
    pid = uuid.uuid4()
    for method, path in [
        ("GET", f"{PEERS}/{pid}"),
        ("PUT", f"{PEERS}/{pid}"),
        ("DELETE", f"{PEERS}/{pid}"),
        ("POST", f"{PEERS}/{pid}/enable"),
        ("POST", f"{PEERS}/{pid}/disable"),
        ("GET", f"{PEERS}/{pid}/config"),
        ("GET", f"{PEERS}/{pid}/qr"),
    ]:
        r = await admin.request(method, path, json={"name": "x"} if method == "PUT" else None)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    r = await admin.put(f"{PEERS}/{pid}", json={"allowed_ips": ["172.16.0.0/12"]})
    assert r.status_code == 404


async def test_subnet_full_is_409(database_url: str, tmp_path: Path) -> None:
    from controlplane.app import create_app

    application = create_app(wg_settings(database_url, tmp_path, wg_subnet="10.77.0.0/29"))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://t",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as admin:
            made = [(await admin.post(PEERS, json={"name": f"p{i}"})).json() for i in range(5)]
            assert [p["address"] for p in made] == [f"10.77.0.{i}" for i in range(2, 7)]
            r = await admin.post(PEERS, json={"name": "one-too-many"})
            assert r.status_code == 409
            assert "10.77.0.0/29 has no free address" in r.json()["error"]["message"]
            await admin.delete(f"{PEERS}/{made[2]['id']}")
            r = await admin.post(PEERS, json={"name": "fits-again"})
            assert r.status_code == 201 and r.json()["address"] == "10.77.0.4"


async def test_concurrent_creates_get_distinct_addresses(admin: httpx.AsyncClient) -> None:
    results = await asyncio.gather(*(admin.post(PEERS, json={"name": f"c{i}"}) for i in range(20)))
    assert [r.status_code for r in results] == [201] * 20
    addresses = sorted(int(r.json()["address"].rsplit(".", 1)[1]) for r in results)
    assert addresses == list(range(2, 22))


async def test_disabled_wireguard_answers_404(database_url: str, tmp_path: Path) -> None:
    from controlplane.app import create_app
    from tests.conftest import make_settings

    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        assert application.state.cp.wireguard_sync is None
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
            assert (await anon.get(PEERS)).status_code == 401  # the token is checked first
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            for method, path in [
                ("GET", PEERS),
                ("POST", PEERS),
                ("GET", f"{PEERS}/{uuid.uuid4()}/qr"),
            ]:
                r = await anon.request(method, path, json={"name": "x"}, headers=headers)
                assert r.status_code == 404, (method, path)
                err = r.json()["error"]
                assert err["code"] == "wireguard_disabled"
                assert "WireGuard is not enabled" in err["message"]


async def test_openapi_documents_every_status(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = {p: ops for p, ops in spec["paths"].items() if p.startswith(PEERS)}
    operations = [(p, m, op) for p, ops in paths.items() for m, op in ops.items()]
    assert len(operations) == 9
    for path, method, op in operations:
        documented = set(op["responses"])
        assert {"401", "404", "422"} <= documented, (path, method)
    assert "409" in paths[PEERS]["post"]["responses"]
    assert "409" in paths[f"{PEERS}/{{peer_id}}/config"]["get"]["responses"]
    assert "image/svg+xml" in paths[f"{PEERS}/{{peer_id}}/qr"]["get"]["responses"]["200"]["content"]


@pytest.mark.parametrize("dns", [["10.66.0.1"], ["1.1.1.1", "9.9.9.9"]])
async def test_config_lists_dns_and_client_routes(
    database_url: str, tmp_path: Path, dns: list[str]
) -> None:
    from controlplane.app import create_app

    settings = wg_settings(
        database_url, tmp_path, wg_dns=dns, wg_client_allowed_ips=["10.66.0.0/24", "10.10.0.0/16"]
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://t",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as admin:
            peer = (await admin.post(PEERS, json={"name": "dns"})).json()
            text = (await admin.get(f"{PEERS}/{peer['id']}/config")).text
    assert f"DNS = {', '.join(dns)}\n" in text
    assert "AllowedIPs = 10.66.0.0/24, 10.10.0.0/16\n" in text


async def test_list_is_one_query_whatever_the_page_size(
    admin: httpx.AsyncClient, app: object
) -> None:
    for i in range(12):
        await admin.post(PEERS, json={"name": f"n{i}"})
    await flush_audit(app)
    db = app.state.cp.db  # type: ignore[attr-defined]
    counts = []
    for limit in (1, 12):
        before = db.queries_run
        r = await admin.get(PEERS, params={"limit": limit})
        assert len(r.json()["items"]) == limit
        counts.append(db.queries_run - before)
    assert max(counts) <= 2, counts  # one page query (+ a background write at most), not 12


async def test_catch_all_allowed_ips_only_when_the_operator_allows_them(
    database_url: str, tmp_path: Path
) -> None:
    from controlplane.app import create_app

    app = create_app(wg_settings(database_url, tmp_path, wg_allow_wide_allowed_ips=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://t",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as admin:
            body = {"name": "exit", "allowed_ips": ["128.0.0.0/1", "::/0"]}
            r = await admin.post(PEERS, json=body)
            assert r.status_code == 201, r.text
            assert {"128.0.0.0/1", "::/0"} <= set(r.json()["allowed_ips"])
            # Still never inside WG_SUBNET: 0.0.0.0/0 would take the other peers' addresses.
            r = await admin.post(PEERS, json={"name": "all", "allowed_ips": ["0.0.0.0/0"]})
            assert r.status_code == 422 and "WG_SUBNET" in r.text
