"""The simulator keeps its containers across restarts (the demo's var/pvesim.json)."""

from __future__ import annotations

from pathlib import Path

import httpx

from controlplane.pvesim.models import Container
from controlplane.pvesim.simulator import Simulator


async def test_containers_configs_and_addresses_come_back(tmp_path: Path) -> None:
    path = tmp_path / "var" / "pvesim.json"
    first = Simulator(("pve1", "pve2"), loopback_ips=True, app_port=0)
    ct = Container(vmid=10007, node="pve2", config={"hostname": "acme", "memory": 512})
    first.containers[ct.vmid] = ct
    await first.container_started(ct)
    stopped = Container(vmid=10008, node="pve1", config={"hostname": "idle", "lock": "disk"})
    first.containers[stopped.vmid] = stopped
    first.save(path)
    await first.close()

    second = Simulator(("pve1", "pve2"), loopback_ips=True, app_port=0)
    try:
        assert await second.load(path) == 4  # two templates and the two containers
        back = second.containers[10007]
        assert back.config == {"hostname": "acme", "memory": 512} and back.node == "pve2"
        assert back.status == "running" and back.ip == ct.ip and back.ip.startswith("127.100.")
        assert back.units.keys() == ct.units.keys()
        port = second.guest_apps.port_of(10007)
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://{back.ip}:{port}/")
        assert r.json()["hostname"] == "acme"  # its app answers again
        idle = second.containers[10008]
        assert idle.status == "stopped" and idle.lock == "disk"  # a stale lock stays
    finally:
        await second.close()
    assert await Simulator(("pve1",)).load(tmp_path / "missing.json") == 0
