"""`GET /api/v1/user/events` and `GET /api/v1/events`: changes as Server-Sent Events,
resumable with Last-Event-ID, across replicas, with heartbeats and bounded queues."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.auth.conftest import bearer, client_for, login, register, user_settings
from tests.conftest import ADMIN_TOKEN
from tests.events.conftest import Event, SseReader, http_server, open_stream

ADMIN = bearer(ADMIN_TOKEN)
USER_EVENTS = "/api/v1/user/events"


async def _user(app: Any, email: str) -> tuple[dict[str, str], str]:
    async with client_for(app) as c:
        row = await register(c, email)
        return bearer((await login(c, email))["access_token"]), row["id"]


async def _until(reader: SseReader, pred: Any, timeout: float = 30.0) -> list[Event]:
    seen: list[Event] = []
    async with asyncio.timeout(timeout):
        while True:
            event = await reader.next(timeout)
            seen.append(event)
            if pred(event):
                return seen


async def test_a_user_sees_own_tenants_only_in_user_words(
    plane: Any, base_url: str, app: Any
) -> None:
    ada, ada_id = await _user(app, "ada@example.com")
    _, bob_id = await _user(app, "bob@example.com")
    async with open_stream(base_url, USER_EVENTS, ada) as reader:
        await plane.create("bobs", owner_user_id=bob_id)
        mine = await plane.create("adas", owner_user_id=ada_id)
        [event] = await _until(reader, lambda e: True)
        assert event.event == "tenant" and event.data["id"] == mine["id"]
        assert event.data["status"] == "provisioning" and event.data["step"] == "clone"
        assert event.data["url"] == "https://adas.localhost/"
        for hidden in ("node_id", "vmid", "ip_address", "last_error", "owner_user_id"):
            assert hidden not in event.data
        await plane.db.execute(
            "UPDATE tenants SET status = 'error', step = NULL, error_step = 'bootstrap',"
            " last_error = 'bootstrap: ProxmoxTaskError: exit 1 on pve1',"
            " health = 'unknown: ProxmoxUnavailableError: GET /nodes/pve1'"
            " WHERE id = %(id)s",
            mine,
        )
        [failed] = await _until(reader, lambda e: True)
        assert failed.data["error_reason"] == "bootstrap_failed"
        assert failed.data["health"] == "unknown" and failed.id > event.id
        # A write that changes nothing a client shows (a poll's timestamps) is not news.
        await plane.db.execute("UPDATE tenants SET observed_at = now() WHERE id = %(id)s", mine)
        await plane.db.execute("UPDATE tenants SET name = 'Renamed' WHERE id = %(id)s", mine)
        [renamed] = await _until(reader, lambda e: True)
        assert renamed.data["name"] == "Renamed"
    assert await plane.db.fetch_val("SELECT count(*) FROM events WHERE kind = 'tenant'") == 4


async def test_reconnecting_mid_provisioning_sees_every_transition_once(
    plane: Any, base_url: str, app: Any
) -> None:
    ada, ada_id = await _user(app, "ada@example.com")
    plane.sim.sim.durations.update({"vzclone": 0.4, "vzstart": 0.3})
    received: list[Event] = []
    plane.worker.start()
    try:
        async with open_stream(base_url, USER_EVENTS, ada) as reader:
            tenant = await plane.create("acme", owner_user_id=ada_id)
            received += await _until(reader, lambda e: e.data["step"] not in (None, "clone"))
        # The connection is gone while provisioning goes on.
        await asyncio.sleep(0.5)
        headers = {**ada, "Last-Event-ID": str(received[-1].id)}
        async with open_stream(base_url, USER_EVENTS, headers) as reader:
            received += await _until(reader, lambda e: e.data["status"] == "active", 60)
    finally:
        await plane.worker.stop(grace=5)
    ids = [e.id for e in received]
    assert ids == sorted(set(ids)), ids  # increasing, none twice
    truth = await plane.db.fetch_all(
        "SELECT id, data->>'status' AS status, data->>'step' AS step FROM events"
        " WHERE subject_id = %(id)s ORDER BY id",
        tenant,
    )
    assert ids == [r["id"] for r in truth]  # every transition, exactly once
    steps = [(e.data["status"], e.data["step"]) for e in received]
    assert steps == [(r["status"], r["step"]) for r in truth]
    assert steps[0] == ("provisioning", "clone") and steps[-1] == ("active", None)
    assert {"clone", "start", "route"} <= {step for _, step in steps}


async def test_a_change_on_one_replica_reaches_a_stream_on_another(
    database_url: str, app: Any, base_url: str
) -> None:
    from controlplane.app import create_app

    other = create_app(user_settings(database_url, events_heartbeat_s=0.2))
    async with (
        other.router.lifespan_context(other),
        http_server(other) as other_url,
        open_stream(other_url, "/api/v1/events", ADMIN) as reader,
    ):
        if True:
            async with httpx.AsyncClient(base_url=base_url, headers=ADMIN) as first:
                r = await first.post(
                    "/api/v1/projects",
                    json={"name": "P", "slug": "p", "template_vmid": 9000},
                )
                assert r.status_code == 201
                await app.state.cp.db.execute(
                    "INSERT INTO nodes (id, name, api_url, pve_node, token_id,"
                    " token_secret_sealed, total_ram_mb, vmid_range_start, vmid_range_end)"
                    " VALUES (%(id)s, 'n1', 'https://10.0.0.1:8006', 'pve1', 'a@pam!b', 'x',"
                    " 1024, 100, 200)",
                    {"id": uuid.uuid4()},
                )
            [node] = await _until(reader, lambda e: True)
            assert node.event == "node" and node.data["name"] == "n1"
            assert "token_secret_sealed" not in node.data and node.data["has_ssh_key"] is False
            await app.state.cp.db.execute("DELETE FROM nodes")
            [gone] = await _until(reader, lambda e: True)
            assert gone.event == "node_deleted" and gone.data == {"id": node.data["id"]}


async def test_heartbeats_and_a_slow_client_is_dropped_alone(app: Any, base_url: str) -> None:
    hub = app.state.cp.events
    hub.queue_size = 2
    slow = hub.subscribe(None)  # never reads
    hub.queue_size = 256
    async with open_stream(base_url, "/api/v1/events", ADMIN) as reader:
        started = asyncio.get_running_loop().time()
        await reader.wait_pings(3)  # `: ping` on the open stream, then every 0.2 s
        assert asyncio.get_running_loop().time() - started >= 0.3
        db = app.state.cp.db
        for i in range(5):
            await db.execute(
                "INSERT INTO tenants (id, name, subdomain, ram_mb, cores, status)"
                " VALUES (%(id)s, %(n)s, %(n)s, 64, 1, 'active')",
                {"id": uuid.uuid4(), "n": f"t{i}"},
            )
        names = [(await reader.next()).data["name"] for _ in range(5)]
        assert names == [f"t{i}" for i in range(5)]  # the fast one got everything
    assert slow.dropped.is_set() and slow not in hub.subscribers
    assert slow.queue.qsize() == 2


async def test_resume_after_pruning_says_reset(app: Any, base_url: str) -> None:
    db = app.state.cp.db
    for i in range(3):
        await db.execute(
            "INSERT INTO tenants (id, name, subdomain, ram_mb, cores, status)"
            " VALUES (%(id)s, %(n)s, %(n)s, 64, 1, 'active')",
            {"id": uuid.uuid4(), "n": f"t{i}"},
        )
    ids = [r["id"] for r in await db.fetch_all("SELECT id FROM events ORDER BY id")]
    # Resuming inside what is kept replays the rest.
    headers = {**ADMIN, "Last-Event-ID": str(ids[0])}
    async with open_stream(base_url, "/api/v1/events", headers) as reader:
        assert [(await reader.next()).id for _ in range(2)] == ids[1:]
    from controlplane.events.hub import Q

    await db.execute("UPDATE events SET at = now() - interval '2 days' WHERE id < %(id)s",
                     {"id": ids[2]})  # fmt: skip
    await db.execute(Q["events_prune"], {"keep": 86_400})
    assert await db.fetch_val("SELECT min(id) FROM events") == ids[2]
    async with open_stream(base_url, "/api/v1/events", headers) as reader:
        first = await reader.next()
        assert first.event == "reset" and first.id == ids[2]


async def test_who_may_listen(app: Any, base_url: str) -> None:
    ada, _ = await _user(app, "ada@example.com")
    async with httpx.AsyncClient(base_url=base_url) as c:
        for path in (USER_EVENTS, "/api/v1/events"):
            assert (await c.get(path)).status_code == 401
            r = await c.get(path, headers=bearer("not-a-token"))
            assert r.status_code in (401, 403)
        assert (await c.get("/api/v1/events", headers=ada)).status_code == 403
        assert (await c.get(USER_EVENTS, headers=ADMIN)).status_code == 401
        for bad in ("abc", "-1", "1" * 30):
            r = await c.get(USER_EVENTS, headers={**ada, "Last-Event-ID": bad})
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["error"]["fields"][0]["field"] == "Last-Event-ID"


async def test_a_user_stream_ends_when_the_user_is_disabled(app: Any, base_url: str) -> None:
    ada, ada_id = await _user(app, "ada@example.com")
    async with open_stream(base_url, USER_EVENTS, ada) as reader:
        async with httpx.AsyncClient(base_url=base_url, headers=ADMIN) as c:
            assert (await c.post(f"/api/v1/users/{ada_id}/disable")).status_code == 200
        try:
            await reader.next(timeout=5)
            raise AssertionError("the stream went on")
        except EOFError:
            pass
