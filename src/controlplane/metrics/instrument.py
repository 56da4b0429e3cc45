"""Record provisioning steps and Proxmox calls without editing the provisioner or the client.

The app state already holds the objects that do the work: the worker (`extras["worker"]`,
when this process runs workers) and the Proxmox client registry
(`extras["proxmox_registry"]`). `instrument_worker` and `instrument_registry` wrap a few of
their methods on the instance (never on the class: other apps in the same process are not
touched), and the wrappers call the same `observe_*` functions the owners could call
directly. Each wrapper is installed once per object.

A step starts when the worker records it (`StepContext.set_step`) and ends when the next
one starts, when the operation ends, or when the worker reports it failed (`Worker._failed`).
A worker task cancelled while the worker is not stopping lost its lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from controlplane.metrics.registry import Metrics, proxmox_call, proxmox_outcome

log = logging.getLogger(__name__)
_MARK = "_controlplane_metrics"


def _already(obj: Any) -> bool:
    if getattr(obj, _MARK, False):
        return True
    setattr(obj, _MARK, True)
    return False


def instrument_worker(metrics: Metrics, worker: Any) -> bool:
    """Time the steps of `worker` (a `controlplane.provisioner.worker.Worker`)."""
    ctx: Any = getattr(worker, "ctx", None)
    needed = (
        callable(getattr(ctx, "set_step", None))
        and callable(getattr(worker, "_process", None))
        and callable(getattr(worker, "_failed", None))
    )
    if not needed:
        log.warning("metrics: the worker has no set_step/_process/_failed; steps not timed")
        return False
    if _already(worker):
        return True
    # tenant id -> (operation, step, started)
    open_steps: dict[Any, tuple[str, str, float]] = {}

    def close(tenant_id: Any, *, ok: bool, error: str | None = None) -> None:
        opened = open_steps.pop(tenant_id, None)
        if opened is not None:
            operation, step, started = opened
            metrics.observe_step(operation, step, time.monotonic() - started, ok=ok, error=error)

    set_step = ctx.set_step
    process = worker._process
    failed = worker._failed

    async def timed_set_step(tenant: dict[str, Any], step: str) -> None:
        close(tenant["id"], ok=True)  # the previous step got this far: it is done
        started = time.monotonic()
        await set_step(tenant, step)
        open_steps[tenant["id"]] = (str(tenant.get("status")), step, started)

    async def timed_failed(tenant: dict[str, Any], exc: Exception) -> None:
        error = type(exc).__name__
        if tenant["id"] in open_steps:
            close(tenant["id"], ok=False, error=error)
        else:  # failed before its first step (the node vanished ...)
            metrics.observe_step(
                str(tenant.get("status")),
                tenant.get("step") or "unknown",
                None,
                ok=False,
                error=error,
            )
        await failed(tenant, exc)

    async def timed_process(tenant_id: Any) -> None:
        try:
            await process(tenant_id)
        except asyncio.CancelledError:
            open_steps.pop(tenant_id, None)
            if not getattr(worker, "_stopping", False):
                metrics.observe_lease_lost()
            raise
        close(tenant_id, ok=True)  # the operation's last step, up to its final swap

    ctx.set_step = timed_set_step
    worker._process = timed_process
    worker._failed = timed_failed
    return True


def instrument_registry(metrics: Metrics, registry: Any) -> bool:
    """Count and time the calls of every client `registry` hands out, by node name."""
    client_for = getattr(registry, "client", None)
    if not callable(client_for):
        log.warning("metrics: the Proxmox registry has no client(); calls not counted")
        return False
    if _already(registry):
        return True

    def counted_client(node: dict[str, Any]) -> Any:
        client = client_for(node)
        instrument_client(metrics, client, str(node.get("name") or node.get("id")))
        return client

    registry.client = counted_client
    return True


def instrument_client(metrics: Metrics, client: Any, node: str) -> bool:
    """Count and time one `ProxmoxClient`'s API calls (its single transport method)."""
    envelope = getattr(client, "_envelope", None)
    if not callable(envelope):
        log.warning("metrics: ProxmoxClient has no _envelope(); calls not counted")
        return False
    if _already(client):
        return True

    async def counted(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        call = proxmox_call(method, path)
        started = time.monotonic()
        try:
            result = await envelope(method, path, *args, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.observe_proxmox_call(
                node, call, proxmox_outcome(exc), time.monotonic() - started
            )
            raise
        metrics.observe_proxmox_call(node, call, "ok", time.monotonic() - started)
        return result

    client._envelope = counted
    return True
