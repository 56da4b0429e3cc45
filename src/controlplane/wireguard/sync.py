"""Keep the hub interface's peers equal to the enabled peers in the database.

`PeerSyncer` runs one pass at start-up, one after every change of `wireguard_peers` (a
trigger sends `NOTIFY wireguard_peers`; every process that syncs listens, so a change made
by any replica, the dashboard or by hand reaches the interface at once), and one every
`WG_SYNC_SECONDS` to repair drift such as a restarted wireguard-go. A failed pass is logged
and retried after a short back-off; it never fails an API request: the database is the
truth and the interface catches up.

The control plane owns the peers of `WG_INTERFACE`: a peer the database does not know is
removed. When the interface does not exist on this host (no UAPI socket, no kernel link)
the pass does nothing and says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg import sql

from controlplane.config import Settings
from controlplane.db import Database, DatabaseError, load_queries
from controlplane.wireguard.device import DeviceError, PeerMap, SyncResult, find_device, sync_device

log = logging.getLogger(__name__)
_Q = load_queries("controlplane.wireguard")

CHANNEL = "wireguard_peers"
RETRY_SECONDS = 2.0


async def desired_peers(db: Database) -> PeerMap:
    rows = await db.fetch_all(_Q["enabled_peers"])
    return {row["public_key"]: list(row["allowed_ips"]) for row in rows}


class PeerSyncer:
    def __init__(
        self,
        db: Database,
        *,
        interface: str,
        uapi_dir: str,
        hub_public_key: str | None = None,
        interval: float = 60.0,
        retry: float = RETRY_SECONDS,
        listen_conninfo: str | None = None,
    ) -> None:
        self._db = db
        self.interface = interface
        self._uapi_dir = uapi_dir
        self._hub_public_key = hub_public_key
        self._interval = interval
        self._retry = min(retry, interval)
        self._conninfo = listen_conninfo
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._said: str | None = None  # the last condition logged, to log each one once
        self.passes = 0
        self.last_result: SyncResult | None = None
        self.last_error: str | None = None

    def _say_once(self, key: str, level: int, message: str, *args: object) -> None:
        if self._said != key:
            self._said = key
            log.log(level, message, *args)

    async def run_once(self) -> bool:
        """One pass; True when the interface matches (or does not exist here). Never raises."""
        try:
            device = find_device(self.interface, self._uapi_dir)
            if device is None:
                self._say_once(
                    "missing",
                    logging.INFO,
                    "WireGuard interface %s not found on this host (no UAPI socket in %s, no "
                    "kernel link); its peers will be synced when it appears",
                    self.interface,
                    self._uapi_dir,
                )
                self.last_error = None
                return True
            desired = await desired_peers(self._db)
            result = await sync_device(device, desired)
            own = await device.public_key() if self._hub_public_key else None
        except (DeviceError, DatabaseError, OSError) as exc:
            self.last_error = str(exc)
            log.warning("WireGuard peer sync of %s failed; retrying: %s", self.interface, exc)
            self._said = None
            return False
        except Exception as exc:
            self.last_error = repr(exc)
            log.exception("WireGuard peer sync of %s failed unexpectedly", self.interface)
            self._said = None
            return False
        finally:
            self.passes += 1
        self.last_result, self.last_error = result, None
        if own is not None and own != self._hub_public_key:
            self._say_once(
                "hub-key",
                logging.ERROR,
                "WireGuard interface %s has public key %s but WG_HUB_PUBLIC_KEY is %s: the "
                "config files we hand out will not connect",
                self.interface,
                own,
                self._hub_public_key,
            )
        else:
            self._say_once("ok", logging.INFO, "WireGuard interface %s in sync", self.interface)
        if result.changed:
            log.info(
                "WireGuard peers synced",
                extra={
                    "interface": self.interface,
                    "added": result.added,
                    "updated": result.updated,
                    "removed": result.removed,
                },
            )
        return True

    def poke(self) -> None:
        """Ask for a pass soon (the NOTIFY listener does this on every change)."""
        self._wake.set()

    async def _sync_loop(self) -> None:
        while True:
            self._wake.clear()
            ok = await self.run_once()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives just as the event is set, and stop() would then wait a whole period.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval if ok else self._retry):
                    await self._wake.wait()

    async def _listen_loop(self) -> None:
        assert self._conninfo is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    self.poke()  # changes made while we were not listening
                    async for _ in conn.notifies():
                        self.poke()
            except psycopg.Error as exc:
                log.warning("listening for WireGuard peer changes failed; retrying: %s", exc)
            await asyncio.sleep(self._retry)

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._sync_loop(), name="wireguard-sync"))
        if self._conninfo:
            self._tasks.append(asyncio.create_task(self._listen_loop(), name="wireguard-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


def peer_syncer(settings: Settings, db: Database) -> PeerSyncer | None:
    """The syncer of `WG_INTERFACE` (not started yet); None when WireGuard is not enabled."""
    if not settings.wg_hub_public_key or not settings.wg_endpoint:
        return None
    return PeerSyncer(
        db,
        interface=settings.wg_interface,
        uapi_dir=settings.wg_uapi_dir,
        hub_public_key=settings.wg_hub_public_key,
        interval=settings.wg_sync_seconds,
        listen_conninfo=db.url,
    )
