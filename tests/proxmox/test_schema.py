"""Every request the client sends, and every answer the simulator gives, against the
official PVE 8.4 API schema (see pve_schema.py for the dialect conversion and leniency)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx
import pytest

from controlplane.proxmox import ProxmoxClient, ProxmoxError
from controlplane.pvesim import SimTransport, Simulator, create_app

from . import pve_schema
from .conftest import make_sim, sim_client


@dataclass
class Exchange:
    method: str
    path: str
    params: dict[str, str]
    status: int = 0
    body: Any = None


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)

    async def on_request(self, request: httpx.Request) -> None:
        query = parse_qsl(request.url.query.decode(), keep_blank_values=True)
        body = parse_qsl(request.content.decode(), keep_blank_values=True)
        path = unquote(request.url.raw_path.decode().split("?")[0]).removeprefix("/api2/json")
        self.exchanges.append(Exchange(request.method, path, dict(query + body)))

    async def on_response(self, response: httpx.Response) -> None:
        await response.aread()
        exchange = self.exchanges[-1]
        exchange.status = response.status_code
        exchange.body = response.json() if response.content else None


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[Simulator, ProxmoxClient, Recorder]]:
    sim = make_sim()
    recorder = Recorder()
    hooks = {"request": [recorder.on_request], "response": [recorder.on_response]}
    async with httpx.AsyncClient(
        transport=SimTransport(create_app(sim)), event_hooks=hooks
    ) as http:
        yield sim, sim_client(http), recorder
    await sim.close()


async def exercise(client: ProxmoxClient) -> None:
    """Every client method, with every optional parameter it can send."""
    await client.version()
    await client.nodes()
    await client.node_status("pve1")
    for kind in ("vm", None, "node", "storage", "sdn"):
        await client.cluster_resources(kind)
    await client.list_containers("pve1")
    await client.container_status("pve1", 9000)
    await client.feature("pve1", 9000)
    await client.feature("pve1", 9000, "snapshot")
    vmid = await client.next_id()
    await client.next_id(vmid)
    upid = await client.clone(
        "pve1", 9000, vmid, hostname="schema-ct", description="d=1;x", full=False
    )
    await client.task_status("pve1", upid)
    await client.wait_task(upid, timeout=5)
    await client.task_log("pve1", upid, start=1, limit=10)
    full = vmid + 1
    await client.wait_task(
        await client.clone("pve1", 9000, full, full=True, storage="local-lvm"), timeout=5
    )
    await client.get_config("pve1", vmid)
    await client.get_config("pve1", vmid, current=True)
    await client.set_config(
        "pve1",
        vmid,
        memory=1024,
        swap=256,
        cores=2,
        onboot=True,
        tags=["tenant-1", "web"],
        description="owner=t1; a;b",
        net0="name=eth0,bridge=vmbr0,ip=dhcp,firewall=1",
        delete=["searchdomain", "nameserver"],
    )
    await client.interfaces("pve1", vmid)
    await client.wait_task(await client.start("pve1", vmid), timeout=5)
    await client.interfaces("pve1", vmid)
    await client.container_status("pve1", vmid)
    await client.list_containers("pve1")
    await client.wait_task(await client.reboot("pve1", vmid, timeout=10), timeout=5)
    await client.wait_task(
        await client.shutdown("pve1", vmid, timeout=10, force_stop=True), timeout=5
    )
    await client.wait_task(await client.start("pve1", vmid), timeout=5)
    await client.wait_task(await client.stop("pve1", vmid, overrule_shutdown=True), timeout=5)
    await client.template("pve1", full)
    await client.wait_task(
        await client.delete("pve1", vmid, purge=True, destroy_unreferenced_disks=True, force=True),
        timeout=5,
    )
    # error answers are recorded too (their shape is checked in the simulator tests)
    for call in (client.container_status("pve1", vmid), client.start("pve1", 9000)):
        with contextlib.suppress(ProxmoxError):
            await call


async def test_client_requests_and_sim_answers_match_the_schema(
    recorded: tuple[Simulator, ProxmoxClient, Recorder],
) -> None:
    _sim, client, recorder = recorded
    await exercise(client)
    request_problems: list[str] = []
    response_problems: list[str] = []
    seen_paths = set()
    for ex in recorder.exchanges:
        path, _, _ = pve_schema.match(ex.method, ex.path)
        seen_paths.add((ex.method, path))
        request_problems += pve_schema.request_problems(ex.method, ex.path, ex.params)
        if ex.status == 200:
            assert set(ex.body) <= {"data", "total"}
            response_problems += pve_schema.response_problems(ex.method, ex.path, ex.body["data"])
    assert not request_problems, "\n".join(request_problems)
    assert not response_problems, "\n".join(response_problems)
    client_paths = {
        ("GET", "/version"),
        ("GET", "/nodes"),
        ("GET", "/nodes/{node}/status"),
        ("GET", "/cluster/resources"),
        ("GET", "/cluster/nextid"),
        ("GET", "/nodes/{node}/lxc"),
        ("GET", "/nodes/{node}/lxc/{vmid}/status/current"),
        ("GET", "/nodes/{node}/lxc/{vmid}/config"),
        ("PUT", "/nodes/{node}/lxc/{vmid}/config"),
        ("POST", "/nodes/{node}/lxc/{vmid}/clone"),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/start"),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/stop"),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/shutdown"),
        ("POST", "/nodes/{node}/lxc/{vmid}/status/reboot"),
        ("POST", "/nodes/{node}/lxc/{vmid}/template"),
        ("DELETE", "/nodes/{node}/lxc/{vmid}"),
        ("GET", "/nodes/{node}/lxc/{vmid}/interfaces"),
        ("GET", "/nodes/{node}/lxc/{vmid}/feature"),
        ("GET", "/nodes/{node}/tasks/{upid}/status"),
        ("GET", "/nodes/{node}/tasks/{upid}/log"),
    }
    assert client_paths <= seen_paths


async def exercise_lifecycle(client: ProxmoxClient, sim: Simulator) -> None:
    """The hosting-lifecycle calls (snapshots, ...), each with every optional parameter."""
    vmid = await client.next_id()
    await client.wait_task(await client.clone("pve1", 9000, vmid, hostname="life"), timeout=5)
    upid = await client.create_snapshot("pve1", vmid, "before_update", description="d=1;x")
    await client.wait_task(upid, timeout=5)
    await client.wait_task(await client.create_snapshot("pve1", vmid, "second"), timeout=5)
    await client.list_snapshots("pve1", vmid)
    await client.snapshot_config("pve1", vmid, "before_update")
    await client.wait_task(await client.start("pve1", vmid), timeout=5)
    await client.list_snapshots("pve1", vmid)  # 'current' says running
    upid = await client.rollback_snapshot("pve1", vmid, "before_update", start=True)
    await client.wait_task(upid, timeout=5)
    upid = await client.rollback_snapshot("pve1", vmid, "second", start=False)
    await client.wait_task(upid, timeout=5)
    await client.wait_task(await client.delete_snapshot("pve1", vmid, "second"), timeout=5)
    upid = await client.delete_snapshot("pve1", vmid, "before_update", force=True)
    await client.wait_task(upid, timeout=5)

    await client.storages("pve1")
    await client.storages("pve1", content="backup")
    upid = await client.backup(
        "pve1", vmid, storage="local", mode="snapshot", compress="zstd",
        notes_template="{{guestname}}", protected=False, remove=False,
    )  # fmt: skip
    await client.wait_task(upid, timeout=5)
    await client.storage_content("pve1", "local-lvm")
    backups = await client.storage_content("pve1", "local", content="backup", vmid=vmid)
    volid = backups[0]["volid"]
    upid = await client.restore(
        "pve1", vmid, volid, storage="local-lvm", force=True, start=False, unique=True,
        hostname="restored", memory=1024,
    )  # fmt: skip
    await client.wait_task(upid, timeout=5)
    await client.wait_task(await client.delete_volume("pve1", "local", volid), timeout=5)

    await client.wait_task(await client.resize_disk("pve1", vmid, "+1G"), timeout=5)
    digest = (await client.get_config("pve1", vmid))["digest"]
    upid = await client.resize_disk("pve1", vmid, "12G", disk="rootfs", digest=digest)
    await client.wait_task(upid, timeout=5)
    await client.wait_task(await client.start("pve1", vmid), timeout=5)
    upid = await client.migrate(
        "pve1", vmid, "pve2", restart=True, online=False, target_storage="1", timeout=30,
        bwlimit=1024,
    )  # fmt: skip
    await client.wait_task(upid, timeout=5)
    await client.container_status("pve2", vmid)
    for timeframe in ("hour", "day", "week", "month", "year"):
        await client.container_rrddata("pve2", vmid, timeframe)
        await client.node_rrddata("pve2", timeframe, cf="MAX")
    await client.container_rrddata("pve2", vmid, "hour", cf="AVERAGE")


LIFECYCLE_PATHS = {
    ("GET", "/nodes/{node}/lxc/{vmid}/snapshot"),
    ("POST", "/nodes/{node}/lxc/{vmid}/snapshot"),
    ("DELETE", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}"),
    ("POST", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback"),
    ("GET", "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config"),
    ("GET", "/nodes/{node}/storage"),
    ("GET", "/nodes/{node}/storage/{storage}/content"),
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}"),
    ("POST", "/nodes/{node}/vzdump"),
    ("POST", "/nodes/{node}/lxc"),
    ("PUT", "/nodes/{node}/lxc/{vmid}/resize"),
    ("POST", "/nodes/{node}/lxc/{vmid}/migrate"),
    ("GET", "/nodes/{node}/lxc/{vmid}/rrddata"),
    ("GET", "/nodes/{node}/rrddata"),
}


async def test_lifecycle_calls_match_the_schema(
    recorded: tuple[Simulator, ProxmoxClient, Recorder],
) -> None:
    sim, client, recorder = recorded
    await exercise_lifecycle(client, sim)
    problems: list[str] = []
    seen = set()
    for ex in recorder.exchanges:
        path, _, _ = pve_schema.match(ex.method, ex.path)
        seen.add((ex.method, path))
        problems += pve_schema.request_problems(ex.method, ex.path, ex.params)
        assert ex.status == 200, (ex.method, ex.path, ex.body)
        assert set(ex.body) <= {"data", "total"}
        problems += pve_schema.response_problems(ex.method, ex.path, ex.body["data"])
    assert not problems, "\n".join(problems)
    assert seen >= LIFECYCLE_PATHS


def test_the_validator_is_not_toothless() -> None:
    """The conversion must reject what PVE rejects, or the test above proves nothing."""
    clone = "/nodes/pve1/lxc/9000/clone"
    assert pve_schema.request_problems("POST", clone, {"newid": "101"}) == []
    assert pve_schema.request_problems("POST", clone, {"newid": "99"})
    assert pve_schema.request_problems("POST", clone, {})
    assert pve_schema.request_problems("POST", clone, {"newid": "101", "bogus": "1"})
    assert pve_schema.request_problems("POST", clone, {"newid": "101", "full": "true"})
    assert pve_schema.request_problems("POST", clone, {"newid": "101", "hostname": "a_b"})
    config = "/nodes/pve1/lxc/101/config"
    assert pve_schema.request_problems("PUT", config, {"net0": "name"})  # what a raw '=' leaves
    assert pve_schema.request_problems("PUT", config, {"net0": "bridge=vmbr0"})
    assert pve_schema.request_problems("PUT", config, {"tags": "a;b"}) == []
    assert pve_schema.request_problems("PUT", config, {"tags": "a b!"})
    status = "/nodes/pve1/lxc/101/status/current"
    assert pve_schema.response_problems("GET", status, {"status": "running", "ha": {}})
    good = {"vmid": 101, "status": "running", "ha": {}, "type": "lxc"}
    assert pve_schema.response_problems("GET", status, good) == []
    assert pve_schema.response_problems("GET", status, {**good, "vmid": "101"})
    assert pve_schema.response_problems("GET", status, {**good, "surprise": 1})
    assert pve_schema.response_problems("GET", "/cluster/nextid", "100") == []
    snapshots = "/nodes/pve1/lxc/101/snapshot"
    snap = {"name": "s1", "snaptime": 1, "description": ""}
    assert pve_schema.response_problems("GET", snapshots, [snap, {"name": "current"}]) == []
    assert pve_schema.response_problems("GET", snapshots, [{**snap, "snaptime": "1"}])
    assert pve_schema.response_problems("GET", snapshots, [{"description": ""}])
    assert pve_schema.request_problems("POST", snapshots, {"snapname": "a"})  # 2+ characters
