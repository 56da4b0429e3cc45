"""Faults on the hosting-lifecycle calls: dropped answers, 5xx, stuck locks, and the
simulator state that shows snapshots and backups."""

from __future__ import annotations

import httpx
import pytest

from controlplane.pvesim import SimTransport, Simulator, create_app

from .conftest import finish_tasks, wait_for
from .test_fidelity import clone
from .test_snapshots import run


async def test_a_lost_answer_still_backs_up(api: httpx.AsyncClient, sim: Simulator) -> None:
    """The POST was handled, its answer dropped: the task runs anyway (retry with care)."""
    await clone(api, sim, 101)
    sim.faults.update({"drop_after_rate": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/nodes/pve1/vzdump", data={"vmid": "101", "storage": "local"})
    sim.faults.update({"drop_after_rate": 0.0})
    await finish_tasks(sim)
    assert [t.type for t in sim.tasks.values()][-1] == "vzdump"
    content = (await api.get("/nodes/pve1/storage/local/content")).json()["data"]
    assert len(content) == 1 and content[0]["vmid"] == 101


async def test_5xx_and_drops_start_nothing(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    tasks = len(sim.tasks)
    sim.faults.update({"http_5xx_rate": 1.0})
    response = await api.post("/nodes/pve1/lxc/101/snapshot", data={"snapname": "s1"})
    assert (response.status_code, response.reason_phrase) == (596, "Connection timed out")
    sim.faults.update({"http_5xx_rate": 0.0, "drop_rate": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        await api.put("/nodes/pve1/lxc/101/resize", data={"disk": "rootfs", "size": "+1G"})
    sim.faults.update({"drop_rate": 0.0})
    assert len(sim.tasks) == tasks and sim.containers[101].snapshots == {}
    assert sim.containers[101].config["rootfs"].endswith("size=8G")


async def test_a_backup_lock_can_outlive_the_backup(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    sim.faults.update({"stuck_lock_seconds": 0.2})
    assert await run(api, sim, "POST", "/nodes/pve1/vzdump", vmid="101") == "OK"
    assert sim.containers[101].lock == "backup"
    refused = await api.post(
        "/nodes/pve1/lxc", data={"vmid": "101", "ostemplate": "local:backup/x", "restore": "1",
                                 "force": "1", "storage": "local-lvm"},
    )  # fmt: skip
    assert refused.reason_phrase == "unable to restore CT 101 - CT is locked (backup)"
    await wait_for(lambda: sim.containers[101].lock is None)


async def test_state_shows_snapshots_and_backups(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/snapshot", snapname="s1") == "OK"
    assert await run(api, sim, "POST", "/nodes/pve1/vzdump", vmid="101", protected="1") == "OK"
    async with httpx.AsyncClient(transport=SimTransport(create_app(sim))) as control:
        state = (await control.get("http://sim/_sim/state")).json()
    ct = next(c for c in state["containers"] if c["vmid"] == 101)
    assert ct["snapshots"] == ["s1"]
    (backup,) = state["backups"]
    assert backup["vmid"] == 101 and backup["node"] == "pve1" and backup["protected"] is True
    assert backup["volid"].startswith("local:backup/vzdump-lxc-101-")
