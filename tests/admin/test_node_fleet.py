"""The node page's fleet card: maintenance, a drain with its progress, a changed certificate."""

from __future__ import annotations

import pytest

from controlplane.operations.drains import DrainRunner
from tests.admin.conftest import Browser
from tests.operations.conftest import Life, make_operations
from tests.provisioner.conftest import Plane, plane

__all__ = ["plane"]


@pytest.fixture
async def life(plane: Plane) -> Life:
    return Life(plane, make_operations(plane))


async def test_maintenance_and_drain_from_the_node_page(dash: Browser, life: Life) -> None:
    tenant = await life.active_tenant("shop")
    node_id = tenant["node_id"]
    page = await dash.open(f"/admin/nodes/{node_id}")
    assert page.status_code == 200 and "Start maintenance" in page.text

    r = await dash.post_form(
        f"/admin/nodes/{node_id}/maintenance", {"enabled": "true", "reason": "kernel"}
    )
    assert r.status_code == 204 and r.headers["hx-redirect"] == f"/admin/nodes/{node_id}"
    node = (await life.admin.get(f"/api/v1/nodes/{node_id}")).json()
    assert node["maintenance"] is True and node["maintenance_reason"] == "kernel"
    page = await dash.open(f"/admin/nodes/{node_id}")
    assert "In maintenance: kernel" in page.text and "End maintenance" in page.text

    r = await dash.post_form(f"/admin/nodes/{node_id}/drain", {"max_parallel": "0"})
    assert r.status_code == 422 and "HX-Retarget".lower() in {k.lower() for k in r.headers}
    r = await dash.post_form(f"/admin/nodes/{node_id}/drain", {"max_parallel": "1"})
    assert r.status_code == 204
    card = await dash.hx_get(f"/admin/nodes/{node_id}/fleet")
    assert (
        "Drain" in card.text and "1 still on the node" in card.text and "every 2000ms" in card.text
    )
    state = life.plane.app.state.cp
    runner = DrainRunner(state.db, state.settings, state.audit)
    for _ in range(10):
        await runner.round()
        await life.settle()
        card = await dash.hx_get(f"/admin/nodes/{node_id}/fleet")
        if "badge done" in card.text:
            break
    assert "1 moved" in card.text and "0 still on the node" in card.text
    r = await dash.post_form(f"/admin/nodes/{node_id}/drain/cancel")
    assert r.status_code == 409  # done, not running: shown in the banner


async def test_forms_need_the_csrf_token(dash: Browser, life: Life) -> None:
    tenant = await life.active_tenant("shop")
    node_id = tenant["node_id"]
    await dash.open(f"/admin/nodes/{node_id}")
    r = await dash.http.post(f"/admin/nodes/{node_id}/maintenance", data={"enabled": "true"})
    assert r.status_code == 403
    node = (await life.admin.get(f"/api/v1/nodes/{node_id}")).json()
    assert node["maintenance"] is False


async def test_changed_certificate_is_shown_with_its_accept_button(
    dash: Browser, life: Life
) -> None:
    tenant = await life.active_tenant("shop")
    node_id = tenant["node_id"]
    presented = ":".join(["CD"] * 32)
    await life.db.execute(
        "UPDATE nodes SET presented_fingerprint = %(fp)s WHERE id = %(id)s",
        {"fp": presented, "id": node_id},
    )
    page = await dash.open(f"/admin/nodes/{node_id}")
    assert "certificate changed" in page.text and presented in page.text
    r = await dash.post_form(f"/admin/nodes/{node_id}/repin", {"fingerprint": presented})
    assert r.status_code == 204
    node = (await life.admin.get(f"/api/v1/nodes/{node_id}")).json()
    assert node["tls_fingerprint"] == presented and node["certificate_changed"] is False
