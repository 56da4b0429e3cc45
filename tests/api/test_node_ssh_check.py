"""Node registration connects to the node's SSH server and compares its host key with the
pinned one: a mismatch or an unreachable host is a 422 naming the field, at once."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from controlplane.pvesim.ssh import start_ssh_server
from controlplane.sshexec import generate_keypair
from tests.conftest import SimHandle


@pytest.fixture
async def ssh(pve_sim: SimHandle) -> AsyncIterator[Any]:
    keys = generate_keypair()
    server = await start_ssh_server(pve_sim.sim, authorized_key=keys.public_openssh, node="pve1")  # type: ignore[arg-type]
    server.keys = keys
    yield server
    await server.close()


def _field(r: httpx.Response) -> str:
    return str(r.json()["error"]["fields"][0]["field"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_host_key_is_compared_at_registration(
    admin: httpx.AsyncClient, pve_sim: SimHandle, ssh: Any
) -> None:
    other = generate_keypair().public_openssh  # a key the host does not have
    body = pve_sim.node_body("pve1", ssh_host=ssh.host, ssh_port=ssh.port,
                             ssh_private_key=ssh.keys.private_pem)  # fmt: skip
    r = await admin.post("/api/v1/nodes", json={**body, "ssh_host_key": other})
    assert r.status_code == 422 and _field(r) == "ssh_host_key", r.text
    assert "not the pinned one" in r.text
    r = await admin.post("/api/v1/nodes", json={**body, "ssh_host_key": "not a key"})
    assert r.status_code == 422 and _field(r) == "ssh_host_key"
    r = await admin.post(
        "/api/v1/nodes",
        json={**body, "ssh_port": _closed_port(), "ssh_host_key": ssh.host_public_key},
    )
    assert r.status_code == 422 and _field(r) == "ssh_host" and "cannot reach SSH" in r.text
    assert (await admin.get("/api/v1/nodes")).json()["total"] == 0
    r = await admin.post("/api/v1/nodes", json={**body, "ssh_host_key": ssh.host_public_key})
    assert r.status_code == 201, r.text
    node = r.json()
    # Changing the pin later is checked the same way.
    r = await admin.put(f"/api/v1/nodes/{node['id']}", json={"ssh_host_key": other})
    assert r.status_code == 422 and _field(r) == "ssh_host_key"
    current = (await admin.get(f"/api/v1/nodes/{node['id']}")).json()
    assert current["ssh_host_key"] == ssh.host_public_key
