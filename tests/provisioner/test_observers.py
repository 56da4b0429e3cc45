"""The worker and the Proxmox client report to the observer they are given (metrics use it)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from controlplane.metrics import Metrics, StepTimer
from controlplane.provisioner.addresses import AddressPolicy
from controlplane.provisioner.context import StepContext
from controlplane.provisioner.worker import Worker
from controlplane.proxmox import ProxmoxClient, ProxmoxNotFoundError, make_http_client
from tests.conftest import PVE_TOKEN_ID, PVE_TOKEN_SECRET, SimHandle
from tests.provisioner.conftest import Plane


class Recorder:
    """A WorkerObserver that writes down what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def step_done(self, tenant_id: uuid.UUID) -> None:
        self.calls.append(("done", tenant_id))

    def step_started(self, tenant: dict[str, Any], step: str, started: float) -> None:
        self.calls.append(("started", tenant["id"], tenant["status"], step))

    def step_failed(self, tenant: dict[str, Any], exc: Exception) -> None:
        self.calls.append(("failed", tenant["id"], type(exc).__name__))

    def abandoned(self, tenant_id: uuid.UUID, *, lease_lost: bool) -> None:
        self.calls.append(("abandoned", tenant_id, lease_lost))


def observed_worker(plane: Plane, observer: Any) -> Worker:
    state = plane.app.state.cp
    ctx = StepContext(
        db=state.db,
        registry=state.proxmox,
        sealer=state.sealer,
        owner=Worker.make_owner(),
        route_hook=state.route_hook,
        addresses=AddressPolicy.from_settings(state.settings),
        observer=observer,
        task_timeout=30.0,
    )
    return Worker(ctx, lease_seconds=5.0, poll_interval=0.05)


async def test_the_worker_reports_each_step_and_the_end_of_the_operation(plane: Plane) -> None:
    recorder = Recorder()
    worker = observed_worker(plane, recorder)
    tenant = await plane.create("observed")
    await worker.run_until_idle(timeout=60)
    assert (await plane.tenant(tenant["id"]))["status"] == "active"
    tid = uuid.UUID(tenant["id"])
    started = [c[3] for c in recorder.calls if c[0] == "started" and c[1] == tid]
    assert list(dict.fromkeys(started)) == [
        "clone", "configure", "start", "address", "bootstrap", "route"
    ]  # fmt: skip
    assert all(c[2] == "provisioning" for c in recorder.calls if c[0] == "started")
    # Each step is closed before the next starts, and the last one when the operation ends.
    mine = [c[0] for c in recorder.calls if c[1] == tid]
    assert mine[-1] == "done"
    assert all(mine[i - 1] == "done" for i, kind in enumerate(mine) if kind == "started")


async def test_a_failed_step_and_a_lost_lease_are_reported(plane: Plane) -> None:
    recorder = Recorder()
    worker = observed_worker(plane, recorder)
    metrics = Metrics()
    timer = StepTimer(metrics)
    tenant = await plane.create("faulty")
    tid = uuid.UUID(tenant["id"])
    plane.sim.sim.faults.update({"task_failure_rate": 1.0})  # type: ignore[attr-defined]
    row = await plane.db.fetch_one(
        "UPDATE tenants SET lease_owner = %(o)s, lease_expires_at = now() + interval '1 min'"
        " WHERE id = %(id)s RETURNING id",
        {"o": worker.ctx.owner, "id": tid},
    )
    assert row is not None
    await worker._process(tid)
    assert ("failed", tid, "ProxmoxTaskError") in recorder.calls
    timer.step_failed({"id": tid, "status": "provisioning", "step": "clone"}, RuntimeError("x"))
    failures = metrics.step_failures.labels("provisioning", "clone", "RuntimeError")
    assert failures._value.get() == 1

    # Cancelled while the worker is not stopping: another worker has the lease.
    plane.sim.sim.faults.update({"task_failure_rate": 0.0})  # type: ignore[attr-defined]
    slow = asyncio.Event()

    async def never(*_a: Any, **_k: Any) -> None:
        await slow.wait()

    worker._work = never  # type: ignore[method-assign]
    task = asyncio.create_task(worker._process(tid))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.calls[-1] == ("abandoned", tid, True)
    timer.abandoned(tid, lease_lost=True)
    assert metrics.lease_losses._value.get() == 1


async def test_the_proxmox_client_reports_every_call(pve_sim: SimHandle) -> None:
    seen: list[tuple[str, str, str | None, float]] = []

    def observer(method: str, path: str, error: BaseException | None, seconds: float) -> None:
        seen.append((method, path, type(error).__name__ if error else None, seconds))

    http = make_http_client(verify_tls=False, fingerprint=None, timeout=5.0)
    client = ProxmoxClient(
        http,
        base_url=pve_sim.url,
        token_id=PVE_TOKEN_ID,
        token_secret=PVE_TOKEN_SECRET,
        observer=observer,
    )
    try:
        await client.version()
        with pytest.raises(ProxmoxNotFoundError):
            await client.get_config("pve1", 99999)
    finally:
        await http.aclose()
    assert [(m, p, e) for m, p, e, _ in seen] == [
        ("GET", "/version", None),
        ("GET", "/nodes/pve1/lxc/99999/config", "ProxmoxNotFoundError"),
    ]
    assert all(seconds >= 0 for *_, seconds in seen)
