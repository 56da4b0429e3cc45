"""A tenant's address is pinned at first provisioning and must lie in TENANT_NETWORKS.

Root inside a container controls its interfaces, so whatever the container reports after
its first start is the tenant's choice, not the operator's. These tests play that tenant:
the simulated container reports an address of its choosing (`set_guest_address`), and the
route, the health checker and the pinned address must not follow it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from controlplane.provisioner.addresses import AddressPolicy
from controlplane.provisioner.status import poll_once
from tests.provisioner.conftest import Plane, make_worker


class RecordingRoutes:
    """A route hook that remembers every upstream it was asked to route to."""

    def __init__(self) -> None:
        self.upstreams: dict[str, list[str]] = {}

    async def upsert_active(self, tenant_id: Any, subdomain: str, upstream: str) -> None:
        self.upstreams.setdefault(subdomain, []).append(upstream)

    async def set_suspended(self, tenant_id: Any, subdomain: str) -> None:
        pass

    async def remove(self, tenant_id: Any) -> None:
        pass


def recording_http() -> tuple[httpx.AsyncClient, list[str]]:
    """An HTTP client for the health checker that records (and answers) every GET."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, text="internal-only file")

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


async def _health_path(plane: Plane) -> None:
    r = await plane.admin.put(
        f"/api/v1/projects/{plane.project['id']}", json={"health_path": "/healthz"}
    )
    assert r.status_code == 200, r.text


async def test_a_changed_report_after_resume_is_not_followed(plane: Plane) -> None:
    """The issue's attack: after a suspend/resume the container reports 127.0.0.5."""
    hook = RecordingRoutes()
    plane.worker = make_worker(plane.app, route_hook=hook)
    await _health_path(plane)
    t = await plane.create("acme")
    await plane.worker.run_until_idle()
    first = await plane.tenant(t["id"])
    pinned = first["ip_address"]
    assert first["status"] == "active" and pinned and pinned.startswith("10.")
    assert hook.upstreams["acme"] == [f"{pinned}:8080"]

    # Root in the container points its interface at a loopback address, then the owner
    # suspends and resumes (the resume reads the interfaces again).
    plane.sim.sim.set_guest_address(first["vmid"], "127.0.0.5")  # type: ignore[attr-defined]
    for action in ("suspend", "resume"):
        r = await plane.admin.post(f"/api/v1/tenants/{t['id']}/{action}")
        assert r.status_code == 202, r.text
        await plane.worker.run_until_idle()
    after = await plane.tenant(t["id"])
    assert after["status"] == "active"
    assert after["ip_address"] == pinned  # the pin holds
    assert after["reported_ip_address"] == "127.0.0.5"  # the operator sees the report
    assert after["health"] == "address_changed"
    assert all(u == f"{pinned}:8080" for u in hook.upstreams["acme"])  # never 127.0.0.5

    http, seen = recording_http()
    async with http:
        assert await poll_once(plane.worker.ctx, http, period=0) == 1
    assert seen == [f"http://{pinned}:8080/healthz"]
    # The health poller keeps the flag: a tenant whose container lies stays flagged.
    assert (await plane.tenant(t["id"]))["health"] == "address_changed"


@pytest.mark.parametrize(
    ("reported", "why"),
    [
        ("127.0.0.5", "loopback"),
        ("169.254.10.1", "link-local"),
        ("224.0.0.9", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("192.0.2.10", "outside TENANT_NETWORKS"),
    ],
)
async def test_first_address_outside_the_rules_fails_provisioning(
    plane: Plane, reported: str, why: str
) -> None:
    hook = RecordingRoutes()
    plane.worker = make_worker(plane.app, route_hook=hook)
    t = await plane.create("bad")
    plane.sim.sim.set_guest_address(t["vmid"], reported)  # type: ignore[attr-defined]
    await plane.worker.run_until_idle()
    got = await plane.tenant(t["id"])
    assert got["status"] == "error" and got["error_step"] == "address", got
    assert reported in got["last_error"] and why in got["last_error"]
    assert got["ip_address"] is None
    assert "bad" not in hook.upstreams


async def test_another_live_tenants_address_is_refused(plane: Plane) -> None:
    a = await plane.create("first")
    await plane.worker.run_until_idle()
    taken = (await plane.tenant(a["id"]))["ip_address"]
    b = await plane.create("second")
    plane.sim.sim.set_guest_address(b["vmid"], taken)  # type: ignore[attr-defined]
    await plane.worker.run_until_idle()
    got = await plane.tenant(b["id"])
    assert got["status"] == "error" and "another tenant" in got["last_error"], got
    assert got["ip_address"] is None


async def test_a_registered_nodes_address_is_refused(plane: Plane) -> None:
    await plane.db.execute("UPDATE nodes SET ssh_host = '10.9.9.9' WHERE name = 'pve2'")
    t = await plane.create("nodeaddr")
    plane.sim.sim.set_guest_address(t["vmid"], "10.9.9.9")  # type: ignore[attr-defined]
    await plane.worker.run_until_idle()
    got = await plane.tenant(t["id"])
    assert got["status"] == "error" and "node" in got["last_error"], got


async def test_a_static_address_in_the_hosts_config_wins_over_the_report(plane: Plane) -> None:
    """An `ip=` set on the host side (template or IPAM) is the operator's, not the tenant's."""
    sim = plane.sim.sim
    template = sim.containers[9000]  # type: ignore[attr-defined]
    template.config["net0"] = "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=10.42.0.7/24"
    t = await plane.create("fixed")
    plane.sim.sim.set_guest_address(t["vmid"], "10.1.2.3")  # type: ignore[attr-defined]
    await plane.worker.run_until_idle()
    got = await plane.tenant(t["id"])
    assert got["status"] == "active" and got["ip_address"] == "10.42.0.7", got
    net0 = sim.containers[got["vmid"]].config["net0"]  # type: ignore[attr-defined]
    assert "ip=10.42.0.7/24" in net0  # configure kept the operator's address


async def test_the_health_checker_never_gets_an_address_outside_the_rules(plane: Plane) -> None:
    """A pin from before the rules (or outside narrowed networks) is never fetched."""
    await _health_path(plane)
    t = await plane.create("legacy")
    await plane.worker.run_until_idle()
    await plane.db.execute(
        "UPDATE tenants SET ip_address = '127.0.0.5' WHERE id = %(id)s", {"id": t["id"]}
    )
    http, seen = recording_http()
    async with http:
        await poll_once(plane.worker.ctx, http, period=0)
    assert seen == []
    assert (await plane.tenant(t["id"]))["health"] == "address_refused"


def test_policy_rules() -> None:
    policy = AddressPolicy.build(
        networks=["10.0.0.0/8", "127.100.0.0/16", "fd00::/8"],
        own_hosts=["10.0.0.1", "cp.example.test"],
    )
    assert policy.refusal("10.1.2.3") is None
    assert policy.refusal("127.100.4.5") is None  # loopback inside an explicit loopback range
    assert policy.refusal("fd00::5") is None
    assert "control plane" in (policy.refusal("10.0.0.1") or "")
    assert "outside" in (policy.refusal("127.0.0.5") or "")
    assert "link-local" in (policy.refusal("fe80::1") or "")
    assert "not an IP address" in (policy.refusal("acme.example") or "")
    # Loopback only inside a range that is itself loopback: a wide network does not count.
    wide = AddressPolicy.build(networks=["0.0.0.0/1"], own_hosts=[])
    assert "loopback" in (wide.refusal("127.0.0.5") or "")
