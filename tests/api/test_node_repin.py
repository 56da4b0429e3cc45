"""A pinned node whose certificate changed: shown, nothing sent to it, accepted by repin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from controlplane.nodes.poller import poll_due_nodes
from controlplane.pvesim import HttpServer, create_app
from controlplane.pvesim.auth import Token
from controlplane.pvesim.certs import ClusterCert, generate_cluster_cert
from controlplane.pvesim.simulator import Simulator
from tests.conftest import PVE_TOKEN_ID, PVE_TOKEN_SECRET, SimHandle

OTHER = ":".join(["AB"] * 32)


@pytest.fixture(scope="module")
def cert() -> ClusterCert:
    return generate_cluster_cert()


@pytest.fixture
async def https_sim(cert: ClusterCert) -> AsyncIterator[SimHandle]:
    sim = Simulator(
        tokens=[Token(PVE_TOKEN_ID, PVE_TOKEN_SECRET, None)],
        nodes=("pve1",),
        ssl_fingerprint=cert.fingerprint,
    )
    server = await HttpServer(create_app(sim)).start("127.0.0.1", 0, cert.server_context())
    yield SimHandle(sim, server.url)
    await server.close()
    await sim.close()


async def _pinned_node(
    admin: httpx.AsyncClient, sim: SimHandle, cert: ClusterCert
) -> dict[str, Any]:
    r = await admin.post("/api/v1/nodes", json=sim.node_body(tls_fingerprint=cert.fingerprint))
    assert r.status_code == 201, r.text
    assert r.json()["certificate_changed"] is False
    return r.json()


async def test_changed_certificate_is_shown_and_accepted(
    admin: httpx.AsyncClient, app: Any, https_sim: SimHandle, cert: ClusterCert
) -> None:
    node = await _pinned_node(admin, https_sim, cert)
    state = app.state.cp
    # The node now presents a certificate other than the pin (here: the pin moved).
    await state.db.execute(
        "UPDATE nodes SET tls_fingerprint = %(fp)s, updated_at = now() WHERE id = %(id)s",
        {"fp": OTHER, "id": node["id"]},
    )
    await poll_due_nodes(state.db, state.proxmox, period=0)
    shown = (await admin.get(f"/api/v1/nodes/{node['id']}")).json()
    assert shown["certificate_changed"] is True
    assert shown["presented_fingerprint"] == cert.fingerprint
    assert "does not match the pinned" in shown["last_error"]

    r = await admin.post(f"/api/v1/nodes/{node['id']}/repin", json={"fingerprint": OTHER})
    assert r.status_code == 409 and r.json()["error"]["fields"][0]["field"] == "fingerprint"
    r = await admin.post(
        f"/api/v1/nodes/{node['id']}/repin", json={"fingerprint": cert.fingerprint}
    )
    assert r.status_code == 200, r.text
    assert (
        r.json()["tls_fingerprint"] == cert.fingerprint and r.json()["certificate_changed"] is False
    )
    await poll_due_nodes(state.db, state.proxmox, period=0)
    shown = (await admin.get(f"/api/v1/nodes/{node['id']}")).json()
    assert shown["status"] == "online" and shown["last_error"] is None
    r = await admin.post(
        f"/api/v1/nodes/{node['id']}/repin", json={"fingerprint": cert.fingerprint}
    )
    assert r.status_code == 409  # nothing to accept any more


async def test_repin_refusals(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, https_sim: SimHandle, cert: ClusterCert
) -> None:
    node = await _pinned_node(admin, https_sim, cert)
    url = f"/api/v1/nodes/{node['id']}/repin"
    assert (await client.post(url, json={"fingerprint": cert.fingerprint})).status_code == 401
    r = await admin.post(f"/api/v1/nodes/{uuid.uuid4()}/repin", json={"fingerprint": OTHER})
    assert r.status_code == 404
    r = await admin.post(url, json={"fingerprint": "zz"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "fingerprint"
    r = await admin.post(url, json={})
    assert r.status_code == 422
