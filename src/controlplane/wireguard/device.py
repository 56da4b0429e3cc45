"""The hub interface's peers, read and written without touching anything else on it.

Two ways to reach an interface, chosen per pass by `find_device()`:

- `UapiDevice`: the userspace implementation's (wireguard-go's) UAPI socket
  `<WG_UAPI_DIR>/<interface>.sock`, spoken directly (`get=1` / `set=1`, keys in hex, the
  reply ends with `errno=N`);
- `WgToolDevice`: the `wg` command (`wg show <if> dump`, `wg set ...`), for a kernel
  interface (`/sys/class/net/<if>` exists and there is no UAPI socket).

`sync_device()` is a diff: peers missing or with other allowed IPs are set, peers the
database does not know are removed, and unchanged peers are not touched, so their sessions
survive. A UAPI `set` is not atomic (it applies lines until the first bad one), so every
key and network is validated before anything is sent.

    DeviceError      the interface refused or could not be reached
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from controlplane.wireguard.keys import check_key, from_hex, public_key_of, to_hex

log = logging.getLogger(__name__)

UAPI_TIMEOUT = 5.0
# (public key base64) -> allowed IPs (normalised network strings)
PeerMap = dict[str, list[str]]


class DeviceError(Exception):
    """Talking to the WireGuard interface failed; the message says how."""


class Device(Protocol):
    name: str

    async def public_key(self) -> str | None: ...

    async def peers(self) -> PeerMap: ...

    async def apply(self, upsert: PeerMap, remove: list[str]) -> None: ...


def normalise_networks(networks: list[str]) -> list[str]:
    return sorted({str(ipaddress.ip_network(n, strict=False)) for n in networks})


class UapiDevice:
    """wireguard-go (or any userspace implementation) through its UAPI unix socket."""

    def __init__(self, name: str, socket_path: str | Path) -> None:
        self.name = name
        self.path = str(socket_path)

    async def _xfer(self, payload: str) -> list[str]:
        try:
            async with asyncio.timeout(UAPI_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(self.path)
                try:
                    writer.write(payload.encode())
                    await writer.drain()
                    buf = b""
                    while not buf.endswith(b"\n\n"):
                        chunk = await reader.read(65536)
                        if not chunk:
                            break
                        buf += chunk
                finally:
                    writer.close()
                    await writer.wait_closed()
        except TimeoutError:
            raise DeviceError(
                f"UAPI socket {self.path} did not answer in {UAPI_TIMEOUT} s"
            ) from None
        except OSError as exc:
            raise DeviceError(f"UAPI socket {self.path}: {exc}") from exc
        lines = buf.decode().strip("\n").split("\n")
        if not lines or not lines[-1].startswith("errno="):
            raise DeviceError(f"UAPI socket {self.path} gave an incomplete answer")
        errno = int(lines[-1].split("=", 1)[1])
        if errno:
            raise DeviceError(f"interface {self.name} refused the change (UAPI errno={errno})")
        return lines[:-1]

    async def _get(self) -> tuple[dict[str, str], PeerMap]:
        device: dict[str, str] = {}
        peers: PeerMap = {}
        current: list[str] | None = None
        for line in await self._xfer("get=1\n\n"):
            key, _, value = line.partition("=")
            if key == "public_key":
                current = peers.setdefault(from_hex(value), [])
            elif current is None:
                device[key] = value
            elif key == "allowed_ip":
                current.append(value)
        return device, {pk: normalise_networks(ips) for pk, ips in peers.items()}

    async def public_key(self) -> str | None:
        device, _ = await self._get()
        private = device.get("private_key")
        if not private or set(private) == {"0"}:
            return None
        return public_key_of(from_hex(private))

    async def peers(self) -> PeerMap:
        _, peers = await self._get()
        return peers

    async def apply(self, upsert: PeerMap, remove: list[str]) -> None:
        lines = ["set=1"]
        for key in remove:
            lines += [f"public_key={to_hex(key)}", "remove=true"]
        for key, networks in upsert.items():
            lines += [f"public_key={to_hex(key)}", "replace_allowed_ips=true"]
            lines += [f"allowed_ip={network}" for network in networks]
        await self._xfer("\n".join(lines) + "\n\n")


class WgToolDevice:
    """A kernel interface through the `wg` command (also works on a UAPI socket)."""

    def __init__(self, name: str, wg: str = "wg") -> None:
        self.name = name
        self._wg = wg

    async def _run(self, *args: str) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                self._wg,
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(UAPI_TIMEOUT):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            raise DeviceError(f"`wg {args[0]} {self.name}` did not finish in time") from None
        except OSError as exc:
            raise DeviceError(f"cannot run {self._wg}: {exc}") from exc
        if proc.returncode != 0:
            raise DeviceError(
                f"`wg {args[0]} {self.name}` failed ({proc.returncode}): "
                f"{err.decode(errors='replace').strip()[:300]}"
            )
        return out.decode()

    async def _dump(self) -> tuple[str | None, PeerMap]:
        lines = (await self._run("show", self.name, "dump")).splitlines()
        if not lines:
            raise DeviceError(f"`wg show {self.name} dump` printed nothing")
        # First line: private-key public-key listen-port fwmark; then one line per peer:
        # public-key preshared-key endpoint allowed-ips latest-handshake rx tx keepalive
        own_public = lines[0].split("\t")[1]
        peers: PeerMap = {}
        for line in lines[1:]:
            fields = line.split("\t")
            ips = [] if fields[3] in ("(none)", "") else fields[3].split(",")
            peers[fields[0]] = normalise_networks(ips)
        return (None if own_public == "(none)" else own_public), peers

    async def public_key(self) -> str | None:
        own, _ = await self._dump()
        return own

    async def peers(self) -> PeerMap:
        _, peers = await self._dump()
        return peers

    async def apply(self, upsert: PeerMap, remove: list[str]) -> None:
        args = ["set", self.name]
        for key in remove:
            args += ["peer", key, "remove"]
        for key, networks in upsert.items():
            args += ["peer", key, "allowed-ips", ",".join(networks)]
        await self._run(*args)


def find_device(interface: str, uapi_dir: str | Path) -> Device | None:
    """The interface's device: UAPI socket first, then a kernel link with `wg`; else None."""
    socket_path = Path(uapi_dir) / f"{interface}.sock"
    if socket_path.is_socket():
        return UapiDevice(interface, socket_path)
    wg = shutil.which("wg")
    if Path("/sys/class/net", interface).exists() and wg:
        return WgToolDevice(interface, wg)
    return None


@dataclass(frozen=True)
class SyncResult:
    added: int = 0
    updated: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def _valid(desired: PeerMap) -> PeerMap:
    clean: PeerMap = {}
    for key, networks in desired.items():
        try:
            clean[check_key(key)] = normalise_networks(networks)
        except ValueError as exc:
            log.error("skipping a peer the interface would refuse: %s", exc, extra={"key": key})
    return clean


async def sync_device(device: Device, desired: PeerMap) -> SyncResult:
    """Make the device's peers exactly `desired`, touching only what differs."""
    want = _valid(desired)
    current = await device.peers()
    remove = [key for key in current if key not in want]
    upsert = {key: ips for key, ips in want.items() if current.get(key) != ips}
    if not (remove or upsert):
        return SyncResult()
    await device.apply(upsert, remove)
    added = sum(1 for key in upsert if key not in current)
    return SyncResult(added=added, updated=len(upsert) - added, removed=len(remove))
