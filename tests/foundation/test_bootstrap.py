"""The composition root: what it builds, the overrides, and a shutdown that always ends."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from controlplane import runtime
from controlplane.audit.writer import AuditLog
from controlplane.config import Settings
from controlplane.metrics import Metrics
from controlplane.runtime import bootstrap
from controlplane.state import Services
from tests.conftest import make_settings


async def test_a_worker_process_gets_every_service_and_no_api_client(
    database_url: str,
) -> None:
    settings = make_settings(database_url, node_poll_seconds=60, tenant_poll_seconds=60)
    async with bootstrap(settings, serve_api=False) as services:
        assert isinstance(services, Services)
        assert services.settings is settings
        assert await services.db.fetch_val("SELECT 1") == 1
        assert services.worker is not None and services.worker.ctx.db is not services.db
        assert services.worker.ctx.registry is services.proxmox
        # Not configured: no Caddy, no WireGuard, no billing.
        assert services.route_hook is None and services.caddy_reconciler is None
        assert services.wireguard_sync is None and services.stripe_gateway is None
        with pytest.raises(dataclasses.FrozenInstanceError):
            services.worker = None  # type: ignore[misc]
    assert services.db.pool.closed
    assert services.worker.ctx.db.pool.closed


async def test_an_api_process_without_workers_has_none(settings: Settings) -> None:
    async with bootstrap(settings, serve_api=True) as services:
        assert services.worker is None


async def test_overrides_are_used_as_given_and_unknown_names_refused(settings: Settings) -> None:
    metrics = Metrics()

    async def verifier(access: object) -> object:
        raise AssertionError("not called")

    given = {"metrics": metrics, "node_verifier": verifier}
    async with bootstrap(settings, serve_api=True, overrides=given) as services:  # type: ignore[arg-type]
        assert services.metrics is metrics and services.node_verifier is verifier
    with pytest.raises(TypeError, match="proxmox_registry"):
        async with bootstrap(settings, serve_api=True, overrides={"proxmox_registry": 1}):  # type: ignore[typeddict-unknown-key]
            pass


async def test_a_service_that_does_not_stop_is_given_up_on_and_the_rest_stop(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def hang(self: AuditLog) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(runtime, "STOP_TIMEOUT", 0.2)
    monkeypatch.setattr(AuditLog, "stop", hang)
    async with bootstrap(settings, serve_api=True) as services:
        pass
    # Stopped in reverse: the hung audit log did not keep the pool (entered before it) open.
    assert services.db.pool.closed
    assert any("did not stop in time" in r.getMessage() for r in caplog.records)


async def test_services_are_stopped_in_reverse_order_of_start(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[str] = []
    real = runtime._bounded

    def spy(name: str, stop):  # type: ignore[no-untyped-def]
        bounded = real(name, stop)

        async def run() -> None:
            stopped.append(name)
            await bounded()

        return run

    monkeypatch.setattr(runtime, "_bounded", spy)
    async with bootstrap(settings, serve_api=False):
        pass
    assert stopped == [
        "warm pool refiller",
        "auto repair",
        "drain runner",
        "backup scheduler",
        "operation worker",
        "usage collector",
        "status poller",
        "worker",
        "worker database",
        "capacity sampler",
        "webhook sender",  # every process delivers webhooks
        "caddy routes",  # not configured: entered and left all the same
        "node poller",
        "proxmox clients",
        "audit log",
        "database",
    ]
