"""Reading and writing a real wireguard-go interface: the UAPI client and the `wg` backend."""

from __future__ import annotations

import pytest

from controlplane.wireguard.device import (
    DeviceError,
    UapiDevice,
    WgToolDevice,
    find_device,
    sync_device,
)
from controlplane.wireguard.keys import generate_keypair
from tests.wireguard.conftest import HUB_PRIVATE, HUB_PUBLIC
from tests.wireguard.lab import UAPI_DIR, Lab, run


def keys(n: int) -> list[str]:
    return [generate_keypair()[1] for _ in range(n)]


@pytest.mark.parametrize("backend", ["uapi", "wg"])
async def test_sync_device_is_an_idempotent_diff(lab: Lab, backend: str) -> None:
    device = (
        UapiDevice(lab.hub_if, UAPI_DIR / f"{lab.hub_if}.sock")
        if backend == "uapi"
        else WgToolDevice(lab.hub_if)
    )
    lab.setup_hub(HUB_PRIVATE, "10.66.0.1/24")
    assert await device.public_key() == HUB_PUBLIC

    a, b, c, foreign = keys(4)
    run("wg", "set", lab.hub_if, "peer", foreign, "allowed-ips", "10.99.0.9/32")  # by hand
    desired = {a: ["10.66.0.2/32"], b: ["10.66.0.3/32", "192.168.7.0/24"]}
    result = await sync_device(device, desired)
    assert (result.added, result.updated, result.removed) == (2, 0, 1)
    assert await device.peers() == {a: ["10.66.0.2/32"], b: ["10.66.0.3/32", "192.168.7.0/24"]}
    # What the real `wg` sees, independently of our parser:
    dump = run("wg", "show", lab.hub_if, "allowed-ips").stdout
    assert f"{a}\t10.66.0.2/32" in dump and foreign not in dump

    assert not (await sync_device(device, desired)).changed  # nothing to do twice

    desired = {a: ["10.66.0.2/32", "172.16.5.0/24"], c: ["10.66.0.4/32"]}
    result = await sync_device(device, desired)
    assert (result.added, result.updated, result.removed) == (1, 1, 1)
    assert await device.peers() == {a: ["10.66.0.2/32", "172.16.5.0/24"], c: ["10.66.0.4/32"]}

    assert (await sync_device(device, {})).removed == 2
    assert await device.peers() == {}


async def test_invalid_keys_are_skipped_before_anything_is_sent(lab: Lab) -> None:
    device = UapiDevice(lab.hub_if, UAPI_DIR / f"{lab.hub_if}.sock")
    (good,) = keys(1)
    result = await sync_device(device, {"not-a-key": ["10.66.0.9/32"], good: ["10.66.0.2/32"]})
    assert result.added == 1
    assert await device.peers() == {good: ["10.66.0.2/32"]}


async def test_find_device_and_errors(lab: Lab, tmp_path) -> None:  # type: ignore[no-untyped-def]
    device = find_device(lab.hub_if, UAPI_DIR)
    assert isinstance(device, UapiDevice)
    assert find_device("wgcp-nowhere", tmp_path) is None
    gone = UapiDevice("gone", tmp_path / "gone.sock")
    with pytest.raises(DeviceError, match=r"gone\.sock"):
        await gone.peers()
    with pytest.raises(DeviceError, match="failed"):
        await WgToolDevice("wgcp-nowhere").peers()
