"""The usage suites: the provisioner's plane (a simulated cluster, a hand-driven worker),
with the auth suites' cheap settings so users can log in, and a Proxmox call counter."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from controlplane.config import Settings
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.usage.collector import UsageCollector
from tests.admin.conftest import ORIGIN, SETUP_TOKEN, authenticator, browser, dash  # noqa: F401
from tests.auth.conftest import bearer, login, register, user_settings
from tests.provisioner.conftest import Plane, plane  # noqa: F401 (a fixture)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Users log in cheaply, and the dashboard can be set up (its origin, setup token)."""
    return user_settings(database_url, setup_token=SETUP_TOKEN, admin_origin=ORIGIN)


class CountingRegistry:
    """The app's real registry, counting every Proxmox client method a collector calls."""

    def __init__(self, registry: ProxmoxRegistry) -> None:
        self._registry = registry
        self.calls: Counter[tuple[str, str]] = Counter()  # (method, pve node or vmid)

    def client(self, node: dict[str, Any]) -> Any:
        real = self._registry.client(node)
        calls = self.calls

        class Counted:
            def __getattr__(self, name: str) -> Any:
                method = getattr(real, name)

                async def call(*args: Any, **kwargs: Any) -> Any:
                    calls[(name, str(args[1] if name == "container_rrddata" else args[0]))] += 1
                    return await method(*args, **kwargs)

                return call

        return Counted()

    def total(self) -> int:
        return sum(self.calls.values())


def collector(p: Plane, interval: float = 3600.0) -> tuple[UsageCollector, CountingRegistry]:
    counting = CountingRegistry(p.app.state.cp.proxmox)
    return UsageCollector(p.db, counting, interval=interval), counting  # type: ignore[arg-type]


async def active_tenants(p: Plane, *subdomains: str, history_s: float = 7200) -> list[dict]:
    """Tenants provisioned to `active`, their containers given `history_s` of rrddata."""
    made = [await p.create(s) for s in subdomains]
    await p.worker.run_until_idle()
    tenants = [await p.tenant(t["id"]) for t in made]
    for t in tenants:
        assert t["status"] == "active", t
        p.sim.sim.backdate(t["vmid"], history_s)  # type: ignore[attr-defined]
    return tenants


async def user_headers(client: httpx.AsyncClient, email: str) -> tuple[str, dict[str, str]]:
    row = await register(client, email)
    return row["id"], bearer((await login(client, email))["access_token"])


@pytest.fixture
async def anon(app: object) -> Any:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
