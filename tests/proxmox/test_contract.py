"""The client's contract with Proxmox VE, run against the simulator and, when configured,
a real host (see conftest). Tests that need fault injection skip on a real host."""

from __future__ import annotations

import asyncio
import re

import pytest

from controlplane.proxmox import (
    ProxmoxAlreadyRunningError,
    ProxmoxAuthError,
    ProxmoxLockedError,
    ProxmoxNotFoundError,
    ProxmoxNotRunningError,
    ProxmoxParameterError,
    ProxmoxPermissionError,
    ProxmoxTaskError,
    ProxmoxTaskTimeoutError,
    ProxmoxUnavailableError,
    is_transient,
    parse_upid,
)

from .conftest import Target

UPID_RE = re.compile(
    r"^UPID:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:"
    r"[^:\s/]+:[^:\s/]*:[^:\s/]+:$"
)


async def test_cluster_and_node_reads(pve: Target) -> None:
    version = await pve.client.version()
    assert version["release"].startswith(("8.", "9."))
    nodes = await pve.client.nodes()
    assert pve.node in {n["node"] for n in nodes}
    status = await pve.client.node_status(pve.node)
    assert status["memory"]["total"] > status["memory"]["used"] > 0
    resources = await pve.client.cluster_resources()
    assert all(isinstance(r["vmid"], int) for r in resources)
    assert {r["type"] for r in resources} <= {"lxc", "qemu"}
    assert isinstance(await pve.client.next_id(), int)
    for ct in await pve.client.list_containers(pve.node):
        assert isinstance(ct["vmid"], int)
        assert ct["status"] in ("running", "stopped")


async def test_container_lifecycle(pve: Target) -> None:
    template = pve.need_template()
    client, node = pve.client, pve.node
    assert await client.feature(node, template, "clone") is True
    vmid = await pve.new_vmid()
    upid = await client.clone(node, template, vmid, hostname=f"ct-contract-{vmid}")
    parsed = parse_upid(upid)
    assert UPID_RE.match(upid)
    assert (parsed.type, parsed.id, parsed.node) == ("vzclone", str(template), node)
    assert parsed.user == client.token_id
    done = await client.wait_task(upid, timeout=120)
    assert done["status"] == "stopped"

    # '=' and ';' survive the form encoding (a raw '=' or ';' is cut by PVE's decoder)
    await client.set_config(
        node,
        vmid,
        net0="name=eth0,bridge=vmbr0,ip=dhcp",
        tags=["Tenant-1", "web;prod"],
        description="owner=tenant-1; plan=small\nsecond line",
    )
    config = await client.get_config(node, vmid)
    assert config["hostname"] == f"ct-contract-{vmid}"
    assert config["description"] == "owner=tenant-1; plan=small\nsecond line\n"
    assert config["tags"] == "prod;tenant-1;web"
    assert config["net0"].startswith("name=eth0,bridge=vmbr0,hwaddr=BC:24:11:")
    assert config["net0"].endswith(",ip=dhcp,type=veth")
    assert await client.interfaces(node, vmid) is None

    with pytest.raises(ProxmoxNotRunningError) as stop_err:
        await client.stop(node, vmid)
    assert stop_err.value.message == f"CT {vmid} not running"
    with pytest.raises(ProxmoxNotRunningError) as reboot_err:
        await client.reboot(node, vmid)
    assert reboot_err.value.message == f"VM {vmid} not running"

    await client.wait_task(await client.start(node, vmid), timeout=120)
    status = await client.container_status(node, vmid)
    assert status["status"] == "running"
    assert status["vmid"] == vmid
    with pytest.raises(ProxmoxAlreadyRunningError) as start_err:
        await client.start(node, vmid)
    assert start_err.value.message == f"CT {vmid} already running"
    if pve.sim is not None:  # a real CT needs time for its DHCP lease
        interfaces = await client.interfaces(node, vmid)
        assert interfaces is not None
        assert {i["name"] for i in interfaces} == {"lo", "eth0"}

    await client.wait_task(await client.reboot(node, vmid), timeout=120)
    await client.wait_task(await client.shutdown(node, vmid, timeout=30), timeout=120)
    assert (await client.container_status(node, vmid))["status"] == "stopped"
    await client.wait_task(await client.delete(node, vmid), timeout=120)
    with pytest.raises(ProxmoxNotFoundError) as missing:
        await client.container_status(node, vmid)
    assert (
        missing.value.message == f"Configuration file 'nodes/{node}/lxc/{vmid}.conf' does not exist"
    )
    pve.created.remove(vmid)


async def test_second_clone_of_a_template_is_locked(pve: Target) -> None:
    template = pve.need_template()
    first = await pve.new_vmid()
    upid = await pve.client.clone(pve.node, template, first)
    second = await pve.new_vmid()  # nextid now skips `first`: it exists from the start
    with pytest.raises(ProxmoxLockedError) as err:
        await pve.client.clone(pve.node, template, second)
    assert err.value.status == 500
    assert err.value.message == "CT is locked (disk)"
    assert err.value.lock == "disk"
    assert is_transient(err.value)
    # while the clone runs, the new CT exists with a 'create' lock and the source has 'disk'
    new_lock = (await pve.client.container_status(pve.node, first)).get("lock")
    source_lock = (await pve.client.container_status(pve.node, template)).get("lock")
    if (await pve.client.task_status(pve.node, upid))["status"] == "running":
        assert (new_lock, source_lock) == ("create", "disk")
    await pve.client.wait_task(upid, timeout=120)
    assert "lock" not in await pve.client.container_status(pve.node, template)


async def test_not_found(pve: Target) -> None:
    vmid = await pve.client.next_id()
    with pytest.raises(ProxmoxNotFoundError) as err:
        await pve.client.get_config(pve.node, vmid)
    assert err.value.status == 500
    assert not is_transient(err.value)


async def test_auth_401(pve: Target) -> None:
    bad = pve.with_credentials(pve.client.token_id, "wrong-secret")
    with pytest.raises(ProxmoxAuthError) as err:
        await bad.nodes()
    assert err.value.status == 401
    assert err.value.message  # from the reason phrase: the body is empty
    assert not is_transient(err.value)


async def test_permission_403(pve: Target) -> None:
    if pve.restricted is None:
        pytest.skip("set PVE_TEST_RESTRICTED_TOKEN (a PVEAuditor token) to test 403")
    template = pve.need_template()
    with pytest.raises(ProxmoxPermissionError) as err:
        await pve.restricted.start(pve.node, template)
    assert err.value.status == 403
    assert err.value.message == f"Permission check failed (/vms/{template}, VM.PowerMgmt)"
    # the permission check comes before the existence check
    missing = await pve.client.next_id()
    with pytest.raises(ProxmoxPermissionError):
        await pve.restricted.start(pve.node, missing)


async def test_parameter_400_per_field(pve: Target) -> None:
    template = pve.need_template()
    vmid = await pve.client.next_id()
    with pytest.raises(ProxmoxParameterError) as err:
        await pve.client.clone(pve.node, template, vmid, hostname="bad_name")
    assert err.value.status == 400
    assert err.value.message == "Parameter verification failed."
    assert set(err.value.errors) == {"hostname"}
    assert "DNS name" in err.value.errors["hostname"]
    with pytest.raises(ProxmoxParameterError) as taken:
        await pve.client.next_id(template)
    assert taken.value.errors == {"vmid": f"VM {template} already exists"}


async def test_unavailable_5xx(pve: Target) -> None:
    sim = pve.need_sim()
    sim.faults.update({"http_5xx_rate": 1.0})
    with pytest.raises(ProxmoxUnavailableError) as err:
        await pve.client.nodes()
    assert (err.value.status, err.value.message) == (596, "Connection timed out")
    assert is_transient(err.value)


async def test_dropped_connection(pve: Target) -> None:
    sim = pve.need_sim()
    vmid = await pve.new_vmid()
    sim.faults.update({"drop_rate": 1.0})
    with pytest.raises(ProxmoxUnavailableError) as err:
        await pve.client.start(pve.node, 9000)
    assert err.value.status is None
    assert is_transient(err.value)
    # a POST is never repeated by the client: one request, one drop
    sim.faults.update({"drop_rate": 0.0, "drop_after_rate": 1.0})
    with pytest.raises(ProxmoxUnavailableError):
        await pve.client.clone(pve.node, 9000, vmid)
    sim.faults.update({"drop_after_rate": 0.0})
    # ... although the clone did start: the caller must look before it retries
    assert (await pve.client.container_status(pve.node, vmid))["vmid"] == vmid


async def test_task_failure_carries_exit_status_and_log(pve: Target) -> None:
    sim = pve.need_sim()
    sim.faults.update({"task_failure_rate": 1.0})
    vmid = await pve.new_vmid()
    upid = await pve.client.clone(pve.node, 9000, vmid)
    with pytest.raises(ProxmoxTaskError) as err:
        await pve.client.wait_task(upid, timeout=5)
    assert err.value.upid == upid
    assert err.value.exitstatus is not None
    assert err.value.exitstatus.startswith("clone failed: ")
    assert err.value.log[-1] == f"TASK ERROR: {err.value.exitstatus}"
    assert err.value.message == err.value.exitstatus
    assert is_transient(err.value)  # a cfs-lock timeout: worth another try
    with pytest.raises(ProxmoxNotFoundError):  # the failed clone is cleaned up
        await pve.client.container_status(pve.node, vmid)


async def test_warnings_is_success(pve: Target) -> None:
    sim = pve.need_sim()
    sim.faults.update({"task_warning_rate": 1.0})
    vmid = await pve.new_vmid()
    status = await pve.client.wait_task(await pve.client.clone(pve.node, 9000, vmid), timeout=5)
    assert status["exitstatus"] == "WARNINGS: 1"


async def test_power_action_on_a_locked_ct_fails_in_the_task(pve: Target) -> None:
    sim = pve.need_sim()
    vmid = await pve.new_vmid()
    await pve.client.wait_task(await pve.client.clone(pve.node, 9000, vmid), timeout=5)
    sim.stick_lock(vmid, "backup", seconds=30)
    with pytest.raises(ProxmoxLockedError) as sync_err:
        await pve.client.set_config(pve.node, vmid, memory=1024)
    assert sync_err.value.lock == "backup"
    upid = await pve.client.start(pve.node, vmid)  # accepted: the lock is checked in the task
    with pytest.raises(ProxmoxTaskError) as err:
        await pve.client.wait_task(upid, timeout=5)
    assert err.value.exitstatus == "CT is locked (backup)"
    assert is_transient(err.value)


async def test_wait_task_deadline(pve: Target) -> None:
    sim = pve.need_sim()
    sim.durations["vzclone"] = 0.5
    vmid = await pve.new_vmid()
    upid = await pve.client.clone(pve.node, 9000, vmid)
    with pytest.raises(ProxmoxTaskTimeoutError) as err:
        await pve.client.wait_task(upid, timeout=0.05)
    assert is_transient(err.value)
    assert (await pve.client.wait_task(upid, timeout=5))["exitstatus"] == "OK"


async def test_task_log_and_status(pve: Target) -> None:
    pve.need_sim()
    vmid = await pve.new_vmid()
    upid = await pve.client.clone(pve.node, 9000, vmid)
    running = await pve.client.task_status(pve.node, upid)
    assert running["status"] == "running"
    assert "exitstatus" not in running
    await pve.client.wait_task(upid, timeout=5)
    log = await pve.client.task_log(pve.node, upid)
    assert log[-1] == "TASK OK"
    assert await pve.client.task_log(pve.node, upid, start=len(log) - 1, limit=1) == ["TASK OK"]


async def test_concurrent_clones_of_different_templates(pve: Target) -> None:
    pve.need_sim()
    a = await pve.new_vmid()
    b = a + 1
    upids = await asyncio.gather(
        pve.client.clone("pve1", 9000, a), pve.client.clone("pve2", 9001, b)
    )
    statuses = await asyncio.gather(*(pve.client.wait_task(u, timeout=5) for u in upids))
    assert [s["node"] for s in statuses] == ["pve1", "pve2"]
