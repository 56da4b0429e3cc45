"""The client's hosting-lifecycle calls (snapshots, backups, restore, resize, migrate, rrd),
against the simulator and, when configured, a real host (see conftest)."""

from __future__ import annotations

import pytest

from controlplane.proxmox import ProxmoxError, ProxmoxTaskError, parse_upid

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
