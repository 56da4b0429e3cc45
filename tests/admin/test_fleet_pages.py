"""The dashboard's fleet pages: users (disable, enable), orphans, capacity, webhooks and
their deliveries; each change through the same use case as the API, audited."""

from __future__ import annotations

import re
from typing import Any

from controlplane.pvesim.models import Container
from controlplane.webhooks.catalog import enqueue
from tests.admin.conftest import Browser, audit_rows
from tests.auth.conftest import register
from tests.conftest import SimHandle


async def test_users_page_disable_and_enable(dash: Browser, app: Any, client: Any) -> None:
    await register(client, "ada@example.com")
    await register(client, "bob@example.com")
    r = await dash.open("/admin/users")
    assert r.status_code == 200 and "ada@example.com" in r.text and "bob@example.com" in r.text
    (ada,) = re.findall(r'id="user-([0-9a-f-]+)">\s*<td>ada@example.com', r.text)
    r = await dash.post_form(f"/admin/users/{ada}/disable")
    assert r.status_code == 204, r.text
    r = await dash.open("/admin/users", params={"status": "disabled"})
    assert "ada@example.com" in r.text and "bob@example.com" not in r.text
    r = await dash.open("/admin/users", params={"email": "bob"})
    assert "bob@example.com" in r.text and "ada@example.com" not in r.text
    r = await dash.post_form(f"/admin/users/{ada}/enable")
    assert r.status_code == 204
    rows = await audit_rows(app, "SELECT action FROM audit_log WHERE action IN ('user.disable', 'user.enable')"
                            " ORDER BY id", expect=2)  # fmt: skip
    assert [row["action"] for row in rows] == ["user.disable", "user.enable"]
    r = await dash.post_form("/admin/users/00000000-0000-4000-8000-000000000000/disable")
    assert r.status_code == 404
    r = await dash.post_form(f"/admin/users/{ada}/explode")
    assert r.status_code == 404
    assert (await dash.open("/admin/users", params={"status": "nope"})).status_code == 422


async def test_orphans_page_lists_and_deletes(
    dash: Browser, app: Any, admin: Any, pve_sim: SimHandle
) -> None:
    r = await admin.post("/api/v1/nodes", json=pve_sim.node_body("pve1"))
    assert r.status_code == 201
    node = r.json()
    # A container of ours whose tenant row is gone (as a crash between clone and insert
    # would leave it).
    pve_sim.sim.containers[10042] = Container(  # type: ignore[attr-defined]
        vmid=10042,
        node="pve1",
        config={"hostname": "left-behind", "tags": "controlplane", "memory": 512, "cores": 1,
                "rootfs": "local-lvm:vm-10042-disk-0,size=8G", "ostype": "debian"},
    )  # fmt: skip
    r = await dash.open("/admin/orphans")
    assert r.status_code == 200 and "left-behind" in r.text, r.text
    r = await dash.post_form(f"/admin/orphans/{node['id']}/10042/delete")
    assert r.status_code == 204, r.text
    r = await dash.open("/admin/orphans")
    assert "left-behind" not in r.text and "No orphans" in r.text
    rows = await audit_rows(app, "SELECT action FROM audit_log WHERE action = 'orphan.delete'",
                            expect=1)  # fmt: skip
    assert len(rows) == 1
    r = await dash.post_form(f"/admin/orphans/{node['id']}/10042/delete")
    assert r.status_code == 404


async def test_capacity_page(dash: Browser, admin: Any, app: Any, pve_sim: SimHandle) -> None:
    r = await admin.post("/api/v1/nodes", json=pve_sim.node_body("pve1", total_ram_mb=8192))
    assert r.status_code == 201
    r = await dash.open("/admin/capacity")
    assert r.status_code == 200
    assert "pve1" in r.text and "/ 8192 MB" in r.text and "<svg" in r.text
    assert "<script" not in r.text.split("<main>", 1)[1]  # the chart needs no script


async def test_webhooks_pages(dash: Browser, app: Any) -> None:
    r = await dash.open("/admin/webhooks")
    assert r.status_code == 200 and "No endpoints yet" in r.text
    bad = await dash.post_form("/admin/webhooks", {"url": "ftp://x.example/h", "events": "*"})
    assert bad.status_code == 422 and 'data-error-for="url">must' in bad.text
    bad = await dash.post_form("/admin/webhooks", {"url": "https://hooks.example.com/a",
                                                   "events": "tenant.nope"})  # fmt: skip
    assert bad.status_code == 422 and 'data-error-for="events">' in bad.text
    bad = await dash.post_form("/admin/webhooks", {"url": "http://169.254.169.254/x",
                                                   "events": "*"})  # fmt: skip
    assert bad.status_code == 422 and "WEBHOOK_ALLOW_PRIVATE=true" in bad.text
    r = await dash.post_form(
        "/admin/webhooks", {"url": "https://hooks.example.com/a", "events": "billing.*\nnode.*"}
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    (secret,) = re.findall(r"<code>(whsec_[^<]+)</code>", r.text)
    (hook_id,) = re.findall(r'id="webhook-([0-9a-f-]+)"', r.text)
    page = await dash.open("/admin/webhooks")
    assert secret not in page.text and "billing.*, node.*" in page.text
    dup = await dash.post_form("/admin/webhooks", {"url": "https://hooks.example.com/a",
                                                   "events": "*"})  # fmt: skip
    assert dup.status_code == 409 and "another webhook endpoint" in dup.text
    # A failed delivery shows in the log and can be redelivered from it.
    async with app.state.cp.db.transaction() as tx:
        await enqueue(tx, "billing.hold_ended", {"user_id": "u"})
    await app.state.cp.db.execute("UPDATE webhook_deliveries SET failed_at = now(), attempts = 12")
    r = await dash.open(f"/admin/webhooks/{hook_id}")
    assert r.status_code == 200 and "billing.hold_ended" in r.text and ">failed<" in r.text
    (delivery,) = re.findall(r'id="delivery-(\d+)"', r.text)
    r = await dash.post_form(f"/admin/webhooks/{hook_id}/deliveries/{delivery}/redeliver")
    assert r.status_code == 204, r.text
    r = await dash.post_form(f"/admin/webhooks/{hook_id}/deliveries/{delivery}/redeliver")
    assert r.status_code == 409  # its redelivery is pending
    r = await dash.post_form(f"/admin/webhooks/{hook_id}/disable")
    assert r.status_code == 204
    assert "disabled" in (await dash.open("/admin/webhooks")).text
    r = await dash.post_form(f"/admin/webhooks/{hook_id}/delete")
    assert r.status_code == 204
    assert (await dash.open(f"/admin/webhooks/{hook_id}")).status_code == 404
    rows = await audit_rows(app, "SELECT action FROM audit_log WHERE target_type = 'webhook'"
                            " ORDER BY id", expect=4)  # fmt: skip
    assert [row["action"] for row in rows] == ["webhook.create", "webhook.redeliver",
                                               "webhook.update", "webhook.delete"]  # fmt: skip
    assert all(secret not in str(row) for row in rows)
