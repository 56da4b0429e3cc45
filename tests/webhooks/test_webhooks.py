"""Webhooks against a real HTTP receiver on loopback: signed deliveries of tenant, node and
billing events, retries while the receiver is down, a slow receiver that holds up neither
the API nor other endpoints, the delivery log and manual redelivery, and every refusal."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from controlplane.webhooks import sender as sender_module
from controlplane.webhooks import signing
from controlplane.webhooks.catalog import enqueue
from tests.conftest import SimHandle, flush_audit, seed_cluster
from tests.webhooks.conftest import wait_for
from tests.webhooks.receiver import Receiver


async def register(admin: httpx.AsyncClient, url: str, events: list[str]) -> dict[str, Any]:
    r = await admin.post("/api/v1/webhooks", json={"url": url, "events": events})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def deliveries(admin: httpx.AsyncClient, hook: dict[str, Any], **params: str) -> list[Any]:
    r = await admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def new_tenant(admin: httpx.AsyncClient, subdomain: str) -> dict[str, Any]:
    r = await admin.post("/api/v1/tenants", json={"subdomain": subdomain})
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def cluster(admin: httpx.AsyncClient, app: Any, pve_sim: SimHandle) -> dict[str, Any]:
    return await seed_cluster(admin, app, pve_sim, node_ram_mb=65536, web_ram_mb=256,
                              big_ram_mb=512)  # fmt: skip


async def test_secret_is_shown_once_and_sealed(admin: httpx.AsyncClient, app: Any) -> None:
    hook = await register(admin, "https://hooks.example.com/cp", ["tenant.*"])
    secret = hook["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert hook["events"] == ["tenant.*"] and hook["enabled"] is True
    r = await admin.get(f"/api/v1/webhooks/{hook['id']}")
    assert r.status_code == 200 and "secret" not in r.json()
    listed = (await admin.get("/api/v1/webhooks")).json()
    assert listed["total"] == 1 and "secret" not in listed["items"][0]
    sealed = await app.state.cp.db.fetch_val(
        "SELECT secret_sealed FROM webhook_endpoints WHERE id = %(id)s", {"id": hook["id"]}
    )
    assert secret not in sealed and sealed.startswith("v1:")
    await flush_audit(app)
    entries = await app.state.cp.db.fetch_all(
        "SELECT * FROM audit_log WHERE action LIKE 'webhook%%'"
    )
    assert [e["action"] for e in entries] == ["webhook.create"]
    assert secret not in json.dumps(entries, default=str)


async def test_signed_delivery_of_subscribed_events_only(
    admin: httpx.AsyncClient, app: Any, cluster: dict[str, Any], receiver: Receiver
) -> None:
    tenants_hook = await register(admin, receiver.url, ["tenant.created"])
    other = Receiver()
    await other.start()
    try:
        nodes_hook = await register(admin, other.url, ["node.*"])
        tenant = await new_tenant(admin, "hooked")
        await wait_for(lambda: _true(receiver.requests), "the tenant.created delivery")
        got = receiver.requests[0]
        body = json.loads(got.body)
        assert body["type"] == "tenant.created" and body["data"]["id"] == tenant["id"]
        assert body["data"]["subdomain"] == "hooked"
        assert got.headers["controlplane-event-id"] == body["id"]
        assert got.headers["controlplane-event-type"] == "tenant.created"
        header = got.headers[signing.HEADER.lower()]
        assert signing.verify(tenants_hook["secret"], header, got.body)
        assert not signing.verify(nodes_hook["secret"], header, got.body)
        assert not signing.verify(tenants_hook["secret"], header, got.body + b" ")
        log = await wait_for(
            lambda: _delivered(admin, tenants_hook), "the delivery marked delivered"
        )
        assert log[0]["event_id"] == body["id"] and log[0]["last_status"] == 200
        assert log[0]["attempts"] == 1
        # The node endpoint got no tenant event; a node event reaches it, not the other.
        node_id = cluster["node"]["id"]
        await app.state.cp.db.execute(
            "UPDATE nodes SET status = 'offline' WHERE id = %(id)s", {"id": node_id}
        )
        await wait_for(lambda: _true(other.requests), "the node.offline delivery")
        node_event = json.loads(other.requests[0].body)
        assert node_event["type"] == "node.offline"
        assert node_event["data"]["id"] == node_id
        assert node_event["data"]["previous_status"] == "online"
        assert "token_secret_sealed" not in other.requests[0].body.decode()
        assert len(receiver.requests) == 1
    finally:
        await other.stop()


async def test_receiver_down_then_back(
    admin: httpx.AsyncClient, app: Any, cluster: dict[str, Any], receiver: Receiver
) -> None:
    await receiver.stop()  # nothing listens on its port now
    hook = await register(admin, receiver.url, ["tenant.*"])
    await new_tenant(admin, "patient")

    async def failed_twice() -> bool:
        log = await deliveries(admin, hook)
        return bool(log) and log[0]["attempts"] >= 2 and log[0]["last_error"] is not None

    await wait_for(failed_twice, "two failed attempts")
    (pending,) = await deliveries(admin, hook)
    assert pending["state"] == "pending" and pending["delivered_at"] is None
    assert "Connect" in pending["last_error"]
    await receiver.start()  # the same port again
    log = await wait_for(lambda: _delivered(admin, hook), "the delivery once it is back")
    assert log[0]["id"] == pending["id"] and log[0]["attempts"] > 2
    assert [json.loads(r.body)["id"] for r in receiver.requests] == [pending["event_id"]]


async def test_slow_receiver_delays_neither_the_api_nor_other_endpoints(
    admin: httpx.AsyncClient, app: Any, cluster: dict[str, Any], receiver: Receiver
) -> None:
    receiver.hold = asyncio.Event()  # answers only when the test lets it
    fast = await Receiver().start()
    db = app.state.cp.db
    try:
        await register(admin, receiver.url, ["billing.hold_started", "tenant.created"])
        await register(admin, fast.url, ["billing.hold_ended", "tenant.created"])
        # Six events for the slow endpoint come first: they would fill every slot.
        for n in range(6):
            async with db.transaction() as tx:
                await enqueue(tx, "billing.hold_started", {"n": n})
        await asyncio.wait_for(receiver.entered.wait(), 10)
        for n in range(6):
            async with db.transaction() as tx:
                await enqueue(tx, "billing.hold_ended", {"n": n})
        # While the slow receiver holds its request open, the API answers and the fast
        # endpoint gets all of its events, and the next one too.
        await new_tenant(admin, "second")
        assert (await admin.get("/api/v1/webhooks")).status_code == 200
        await wait_for(lambda: _true(len(fast.requests) == 7), "every event at the fast one")
        assert receiver.requests == []
        receiver.hold.set()
        await wait_for(lambda: _true(len(receiver.requests) == 7), "the slow one catches up")
    finally:
        await fast.stop()


async def test_failed_for_good_then_redelivered(
    admin: httpx.AsyncClient,
    app: Any,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sender_module, "MAX_ATTEMPTS", 2)
    receiver.status = 500
    hook = await register(admin, receiver.url, ["billing.*"])
    async with app.state.cp.db.transaction() as tx:
        event_id = await enqueue(tx, "billing.hold_started", {"user_id": "u1", "reason": "x"})
    assert event_id is not None

    async def failed() -> list[Any]:
        return await deliveries(admin, hook, state="failed")

    (dead,) = await wait_for(failed, "the delivery failed for good")
    assert dead["attempts"] == 2 and dead["last_status"] == 500
    assert dead["event_id"] == str(event_id) and dead["next_attempt_at"] is None
    assert len(receiver.requests) == 2
    receiver.status = 202
    url = f"/api/v1/webhooks/{hook['id']}/deliveries/{dead['id']}/redeliver"
    r = await admin.post(url)
    assert r.status_code == 202, r.text
    again = r.json()
    assert again["redelivery_of"] == dead["id"] and again["event_id"] == str(event_id)
    await wait_for(lambda: _delivered(admin, hook), "the redelivery")
    assert json.loads(receiver.requests[-1].body)["id"] == str(event_id)
    # A pending delivery cannot be redelivered, nor one of another endpoint.
    receiver.hold = asyncio.Event()
    async with app.state.cp.db.transaction() as tx:
        await enqueue(tx, "billing.hold_ended", {"user_id": "u1"})
    pending = await wait_for(lambda: deliveries(admin, hook, state="pending"), "a pending one")
    r = await admin.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{pending[0]['id']}/redeliver")
    assert r.status_code == 409, r.text
    other = await register(admin, "https://elsewhere.example/h", ["*"])
    r = await admin.post(f"/api/v1/webhooks/{other['id']}/deliveries/{dead['id']}/redeliver")
    assert r.status_code == 404 and "delivery" in r.json()["error"]["message"]
    receiver.hold.set()


async def test_nothing_is_stored_without_a_subscriber(admin: httpx.AsyncClient, app: Any) -> None:
    db = app.state.cp.db
    async with db.transaction() as tx:
        assert await enqueue(tx, "billing.hold_started", {"user_id": "u"}) is None
    hook = await register(admin, "https://hooks.example.com/a", ["tenant.*"])
    async with db.transaction() as tx:
        assert await enqueue(tx, "billing.hold_started", {"user_id": "u"}) is None
    r = await admin.put(f"/api/v1/webhooks/{hook['id']}", json={"enabled": False,
                                                                "events": ["*"]})  # fmt: skip
    assert r.status_code == 200 and r.json()["enabled"] is False
    async with db.transaction() as tx:
        assert await enqueue(tx, "billing.hold_started", {"user_id": "u"}) is None
    assert await db.fetch_val("SELECT count(*) FROM webhook_events") == 0


async def test_an_event_rolled_back_is_never_sent(admin: httpx.AsyncClient, app: Any) -> None:
    hook = await register(admin, "https://hooks.example.com/b", ["billing.*"])
    db = app.state.cp.db
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await enqueue(tx, "billing.hold_started", {"user_id": "u"})
            raise RuntimeError("the cause failed")
    assert await deliveries(admin, hook) == []
    assert await db.fetch_val("SELECT count(*) FROM webhook_events") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x", "events": ["*"]}, "url"),
        ({"url": "https://user:pw@hooks.example.com/x", "events": ["*"]}, "url"),
        ({"url": "https://hooks.example.com/x y", "events": ["*"]}, "url"),
        ({"url": "https://hooks.example.com:99999/x", "events": ["*"]}, "url"),
        ({"url": "https://hooks.example.com/x", "events": []}, "events"),
        ({"url": "https://hooks.example.com/x", "events": ["tenant.exploded"]}, "events"),
        ({"url": "https://hooks.example.com/x", "events": ["nope.*"]}, "events"),
        ({"url": "https://hooks.example.com/x", "events": ["*"], "secret": "mine"}, "secret"),
        (
            {"url": "https://hooks.example.com/x", "events": ["*"], "description": "a\nb"},
            "description",
        ),
    ],
)
async def test_invalid_bodies_name_the_field(
    admin: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await admin.post("/api/v1/webhooks", json=body)
    assert r.status_code == 422, r.text
    assert _field(r) == field


async def test_refusals(admin: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    hook = await register(admin, "https://hooks.example.com/x", ["*"])
    r = await admin.post("/api/v1/webhooks", json={"url": hook["url"], "events": ["node.*"]})
    assert r.status_code == 409 and _field(r) == "url"
    second = await register(admin, "https://hooks.example.com/y", ["*"])
    r = await admin.put(f"/api/v1/webhooks/{second['id']}", json={"url": hook["url"]})
    assert r.status_code == 409 and _field(r) == "url"
    missing = "00000000-0000-4000-8000-000000000000"
    for method in ("GET", "DELETE"):
        assert (await admin.request(method, f"/api/v1/webhooks/{missing}")).status_code == 404
    r = await admin.put(f"/api/v1/webhooks/{missing}", json={"enabled": False})
    assert r.status_code == 404
    assert (await admin.get(f"/api/v1/webhooks/{missing}/deliveries")).status_code == 404
    r = await admin.post(f"/api/v1/webhooks/{hook['id']}/deliveries/1/redeliver")
    assert r.status_code == 404
    r = await admin.post(f"/api/v1/webhooks/{hook['id']}/deliveries/0/redeliver")
    assert r.status_code == 422 and _field(r) == "delivery_id"
    r = await admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries", params={"state": "x"})
    assert r.status_code == 422 and _field(r) == "state"
    assert (await client.get("/api/v1/webhooks")).status_code == 401
    assert (await client.post("/api/v1/webhooks", json={})).status_code == 401
    assert (await admin.delete(f"/api/v1/webhooks/{hook['id']}")).status_code == 204
    assert (await admin.get(f"/api/v1/webhooks/{hook['id']}")).status_code == 404
    types = (await admin.get("/api/v1/webhooks/event-types")).json()
    assert "tenant.active" in types and "node.offline" in types and "billing.hold_started" in types


async def test_disabled_endpoint_refuses_redelivery(
    admin: httpx.AsyncClient, app: Any, receiver: Receiver
) -> None:
    hook = await register(admin, receiver.url, ["billing.*"])
    async with app.state.cp.db.transaction() as tx:
        await enqueue(tx, "billing.hold_ended", {"user_id": "u"})
    (done,) = await wait_for(lambda: _delivered(admin, hook), "the delivery")
    await admin.put(f"/api/v1/webhooks/{hook['id']}", json={"enabled": False})
    r = await admin.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{done['id']}/redeliver")
    assert r.status_code == 409 and _field(r) == "enabled"


def test_signature_reference() -> None:
    body = b'{"id":"e1"}'
    header = signing.header_value("whsec_k", body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert signing.verify("whsec_k", header, body, now=1_700_000_100)
    assert not signing.verify("whsec_k", header, body, now=1_700_000_000 + 301)  # a replay
    assert not signing.verify("whsec_other", header, body, now=1_700_000_000)
    assert not signing.verify("whsec_k", "v1=abc", body)


async def _true(value: Any) -> Any:
    return value


async def _delivered(admin: httpx.AsyncClient, hook: dict[str, Any]) -> list[Any]:
    return await deliveries(admin, hook, state="delivered")


def _field(r: httpx.Response) -> str:
    fields = r.json()["error"]["fields"]
    # The first named part of the path: `events.0` is the field `events`.
    parts = [p for p in str(fields[0]["field"]).split(".") if not p.isdigit()] if fields else []
    return parts[-1] if parts else ""


async def test_operation_events_follow_its_status(
    admin: httpx.AsyncClient, app: Any, cluster: dict[str, Any]
) -> None:
    hook = await register(admin, "https://hooks.example.com/ops", ["operation.*"])
    tenant = await new_tenant(admin, "operated")
    db = app.state.cp.db
    op = await db.fetch_val(
        "INSERT INTO operations (id, tenant_id, kind, requested_by)"
        " VALUES (gen_random_uuid(), %(t)s, 'restart', 'admin') RETURNING id",
        {"t": tenant["id"]},
    )
    for status in ("running", "running", "succeeded"):  # the repeat is no news
        await db.execute(
            "UPDATE operations SET status = %(s)s, step = 'x' WHERE id = %(id)s",
            {"s": status, "id": op},
        )
    events = await db.fetch_all("SELECT type, data FROM webhook_events ORDER BY created_at, id")
    assert [e["type"] for e in events] == ["operation.queued", "operation.running",
                                           "operation.succeeded"]  # fmt: skip
    assert (
        events[-1]["data"]["kind"] == "restart" and events[-1]["data"]["tenant_id"] == tenant["id"]
    )
    assert events[-1]["data"]["previous_status"] == "running"
    assert len(await deliveries(admin, hook)) == 3
