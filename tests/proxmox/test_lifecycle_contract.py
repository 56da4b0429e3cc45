"""The client's hosting-lifecycle calls (snapshots, backups, restore, resize, migrate, rrd),
against the simulator and, when configured, a real host (see conftest)."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.proxmox import (
    ProxmoxAlreadyExistsError,
    ProxmoxError,
    ProxmoxLockedError,
    ProxmoxNotFoundError,
    ProxmoxParameterError,
    ProxmoxTaskError,
    parse_upid,
)

from .conftest import Target


async def _new_ct(pve: Target) -> int:
    template = pve.need_template()
    vmid = await pve.new_vmid()
    upid = await pve.client.clone(pve.node, template, vmid, hostname=f"ct-life-{vmid}")
    await pve.client.wait_task(upid, timeout=120)
    return vmid


async def test_snapshot_lifecycle(pve: Target) -> None:
    client, node = pve.client, pve.node
    vmid = await _new_ct(pve)
    upid = await client.create_snapshot(node, vmid, "first", description="before the update")
    assert (parse_upid(upid).type, parse_upid(upid).id) == ("vzsnapshot", str(vmid))
    await client.wait_task(upid, timeout=120)
    snaps = await client.list_snapshots(node, vmid)
    assert [s["name"] for s in snaps] == ["first"]  # 'current' is not a snapshot
    assert snaps[0]["description"] == "before the update"
    assert isinstance(snaps[0]["snaptime"], int)
    saved = await client.snapshot_config(node, vmid, "first")
    assert saved["hostname"] == f"ct-life-{vmid}"

    with pytest.raises(ProxmoxTaskError) as taken:
        await client.wait_task(await client.create_snapshot(node, vmid, "first"), timeout=120)
    assert taken.value.exitstatus == "snapshot name 'first' already used"
    with pytest.raises(ProxmoxError) as reserved:
        await client.create_snapshot(node, vmid, "current")
    assert reserved.value.message == "unable to use snapshot name 'current' (reserved name)"

    await client.set_config(node, vmid, memory=1024)
    upid = await client.rollback_snapshot(node, vmid, "first")
    assert parse_upid(upid).type == "vzrollback"
    await client.wait_task(upid, timeout=120)
    assert (await client.get_config(node, vmid))["memory"] != 1024
    with pytest.raises(ProxmoxTaskError) as unknown:
        await client.wait_task(await client.rollback_snapshot(node, vmid, "nope"), timeout=120)
    assert unknown.value.exitstatus == "snapshot 'nope' does not exist"

    upid = await client.delete_snapshot(node, vmid, "first")
    assert parse_upid(upid).type == "vzdelsnapshot"
    await client.wait_task(upid, timeout=120)
    assert await client.list_snapshots(node, vmid) == []


async def _backup_storage(pve: Target) -> str:
    stores = await pve.client.storages(pve.node, content="backup")
    assert stores, "the node needs a storage with 'backup' content"
    return str(stores[0]["storage"])


async def _disk_storage(pve: Target) -> str:
    stores = await pve.client.storages(pve.node, content="rootdir")
    return str(stores[0]["storage"])


async def test_backup_and_restore(pve: Target) -> None:
    client, node = pve.client, pve.node
    vmid = await _new_ct(pve)
    storage = await _backup_storage(pve)
    upid = await client.backup(node, vmid, storage=storage, notes_template="{{guestname}}")
    assert (parse_upid(upid).type, parse_upid(upid).id) == ("vzdump", str(vmid))
    if pve.sim is not None:
        await asyncio.sleep(0.01)
        with pytest.raises(ProxmoxLockedError) as busy:
            await client.set_config(node, vmid, memory=1024)
        assert busy.value.lock == "backup"
    await client.wait_task(upid, timeout=600)
    backups = await client.storage_content(node, storage, content="backup", vmid=vmid)
    assert len(backups) == 1 and backups[0]["vmid"] == vmid
    volid = backups[0]["volid"]
    assert volid.startswith(f"{storage}:backup/vzdump-lxc-{vmid}-")
    assert backups[0]["notes"] == f"ct-life-{vmid}"

    disks = await _disk_storage(pve)
    with pytest.raises(ProxmoxAlreadyExistsError):
        await client.restore(node, vmid, volid, storage=disks)
    with pytest.raises(ProxmoxParameterError) as no_rootdir:
        await client.restore(node, vmid, volid, storage=storage, force=True)
    assert "does not support container directories" in no_rootdir.value.errors["storage"]
    await client.set_config(node, vmid, memory=2048)
    upid = await client.restore(node, vmid, volid, storage=disks, force=True)
    assert parse_upid(upid).type == "vzrestore"
    await client.wait_task(upid, timeout=600)
    assert (await client.get_config(node, vmid))["memory"] != 2048

    upid = await client.delete_volume(node, storage, volid)
    assert parse_upid(upid).type == "imgdel"
    await client.wait_task(upid, timeout=120)
    assert await client.storage_content(node, storage, content="backup", vmid=vmid) == []


async def test_backup_to_a_storage_without_backup_content(pve: Target) -> None:
    vmid = await _new_ct(pve)
    disks = await _disk_storage(pve)
    upid = await pve.client.backup(pve.node, vmid, storage=disks)
    with pytest.raises(ProxmoxTaskError) as wrong:
        await pve.client.wait_task(upid, timeout=120)
    assert wrong.value.exitstatus == (
        f"could not get storage information for '{disks}': can't use storage '{disks}' for "
        "backups - wrong content type"
    )


async def test_backup_of_a_ct_on_another_node_starts_nothing(pve: Target) -> None:
    sim = pve.need_sim()
    other = next(n for n in sim.nodes if n != pve.node)
    with pytest.raises(ProxmoxError, match="started no task"):
        await pve.client.backup(other, pve.need_template(), storage="local")


async def test_resize_grows_only(pve: Target) -> None:
    client, node = pve.client, pve.node
    vmid = await _new_ct(pve)
    upid = await client.resize_disk(node, vmid, "+1G")
    assert parse_upid(upid).type == "resize"
    await client.wait_task(upid, timeout=120)
    status = await client.container_status(node, vmid)
    with pytest.raises(ProxmoxError) as shrink:
        await client.resize_disk(node, vmid, "1G")
    assert (shrink.value.status, shrink.value.message) == (500, "unable to shrink disk size")
    size = int(status["maxdisk"]) // 2**30
    with pytest.raises(ProxmoxError) as same:
        await client.resize_disk(node, vmid, f"{size}G")
    assert same.value.message == "disk is already at specified size"


async def test_restart_migration(pve: Target) -> None:
    sim = pve.need_sim()  # a real run needs a second node: not in the contract environment
    client, node = pve.client, pve.node
    target = next(n for n in sim.nodes if n != node)
    vmid = await _new_ct(pve)
    await client.wait_task(await client.start(node, vmid), timeout=120)
    with pytest.raises(ProxmoxError) as running:
        await client.migrate(node, vmid, target)
    assert running.value.message == "can't migrate running container without --online or --restart"
    with pytest.raises(ProxmoxParameterError) as local:
        await client.migrate(node, vmid, node, restart=True)
    assert local.value.errors == {"target": "target is local node."}
    upid = await client.migrate(node, vmid, target, restart=True)
    assert (parse_upid(upid).type, parse_upid(upid).node) == ("vzmigrate", node)
    await client.wait_task(upid, timeout=600)
    assert (await client.container_status(target, vmid))["status"] == "running"
    with pytest.raises(ProxmoxNotFoundError):
        await client.container_status(node, vmid)
    await client.wait_task(await client.delete(target, vmid, force=True), timeout=120)
    pve.created.remove(vmid)
    sim.set_node_online(target, False)
    vmid = await _new_ct(pve)
    with pytest.raises(ProxmoxTaskError) as unreachable:
        await client.wait_task(await client.migrate(node, vmid, target), timeout=120)
    assert unreachable.value.exitstatus == "migration aborted"
    assert any("Can't connect to destination address" in line for line in unreachable.value.log)


async def test_rrddata(pve: Target) -> None:
    client, node = pve.client, pve.node
    vmid = await _new_ct(pve)
    await client.wait_task(await client.start(node, vmid), timeout=120)
    points = await client.container_rrddata(node, vmid, "hour")
    assert len(points) in (70, 71)  # rrdtool may add the current point
    times = [p["time"] for p in points]
    assert all(isinstance(t, int) and t % 60 == 0 for t in times)
    assert times == sorted(times)
    if pve.sim is not None:
        pve.sim.backdate(vmid, 600)
    latest = [p for p in points if "cpu" in p] or [
        p for p in await client.container_rrddata(node, vmid, "hour") if "cpu" in p
    ]
    assert latest and all(isinstance(p["cpu"], float) for p in latest)
    assert {"maxmem", "mem", "netin", "netout", "diskread", "diskwrite"} <= set(latest[-1])
    day = await client.node_rrddata(node, "day", cf="MAX")
    assert all(p["time"] % 1800 == 0 for p in day)
    assert any("memused" in p for p in day)
