"""Async client for the parts of the Proxmox VE API that manage LXC containers.

One instance per Proxmox cluster, over an injected ``httpx.AsyncClient`` (build it with
``make_http_client`` for certificate pinning). It speaks ``/api2/json`` with API-token auth,
unwraps the ``{"data": ...}`` envelope, turns errors into the typed exceptions of
``controlplane.proxmox.errors`` and waits for tasks on the node named in their UPID.

Only GETs are repeated after a dropped connection: a POST that lost its answer may have
started a task already, so repeating it is the caller's decision (after looking at the
cluster), never the transport's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from .errors import (
    ProxmoxError,
    ProxmoxTaskError,
    ProxmoxTaskTimeoutError,
    ProxmoxTLSError,
    ProxmoxUnavailableError,
    error_from_response,
    is_transient,
)
from .forms import encode_params, quote_path
from .lenient import as_flag, as_int, normalize_guest
from .upid import Upid, parse_upid, task_succeeded

READ_TIMEOUT = 10.0
# Slightly above pveproxy's 30 s node-to-node hop, so a slow backend shows up as PVE's own
# "596 Connection timed out" rather than as our timeout.
ACTION_TIMEOUT = 35.0
LOG_TAIL_LINES = 50

# Failures after which a GET may simply be sent again on a fresh connection: the server
# closed an idle pooled connection (pveproxy does after 5 s, and after any error answer).
_RETRYABLE_GET_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | ssl.CertificateError):
            return True
        current = current.__cause__ or current.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


# Poll interval right after a task's expected end (see wait_task).
EXPECTED_POLL = 0.01


def _rrd_points(items: Any) -> list[dict[str, Any]]:
    """rrddata points with ``time`` as int and every value as float, sorted by time."""
    points = []
    for item in items or []:
        point: dict[str, Any] = {"time": as_int(item["time"])}
        for key, value in item.items():
            if key != "time" and value is not None:
                point[key] = float(value)
        points.append(point)
    return sorted(points, key=lambda x: x["time"])


class CallObserver(Protocol):
    """Told about every API call when it ends: `error` is None for a success, else what
    the call raised (a cancelled call is not reported). Metrics count and time calls here."""

    def __call__(
        self, method: str, path: str, error: BaseException | None, seconds: float
    ) -> None: ...


class ProxmoxClient:
    """Calls to one Proxmox VE cluster with one API token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        token_id: str,
        token_secret: str,
        read_timeout: float = READ_TIMEOUT,
        action_timeout: float = ACTION_TIMEOUT,
        poll_interval: float = 0.1,
        max_poll_interval: float = 3.0,
        brisk_seconds: float = 2.0,
        observer: CallObserver | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        base = base.removesuffix("/api2/json")
        self._http = http
        self._api = f"{base}/api2/json"
        self.base_url = base
        self.token_id = token_id
        self._authorization = f"PVEAPIToken={token_id}={token_secret}"
        self._read_timeout = read_timeout
        self._action_timeout = action_timeout
        self._poll_interval = poll_interval
        self._max_poll_interval = max_poll_interval
        self._brisk_seconds = brisk_seconds
        self._observer = observer

    def __repr__(self) -> str:  # never show the secret
        return f"ProxmoxClient(base_url={self.base_url!r}, token_id={self.token_id!r})"

    # -- transport --------------------------------------------------------------------

    async def _envelope(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One API call (a GET perhaps sent twice), reported to the observer when it ends."""
        if self._observer is None:
            return await self._request(method, path, params, timeout=timeout)
        started = time.monotonic()
        try:
            envelope = await self._request(method, path, params, timeout=timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._observer(method, path, exc, time.monotonic() - started)
            raise
        self._observer(method, path, None, time.monotonic() - started)
        return envelope

    async def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None,
        *,
        timeout: float | None,
    ) -> dict[str, Any]:
        url = self._api + path
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        encoded = encode_params(params)
        content: bytes | None = None
        if method in ("GET", "DELETE"):
            if encoded:
                url = f"{url}?{encoded}"
        else:
            content = encoded.encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if timeout is None:
            timeout = self._read_timeout if method == "GET" else self._action_timeout
        attempts = 2 if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                response = await self._http.request(
                    method, url, content=content, headers=headers, timeout=timeout
                )
                break
            except httpx.TimeoutException as exc:
                raise ProxmoxUnavailableError(
                    f"{method} {path}: no answer within {timeout:g} s ({type(exc).__name__})"
                ) from exc
            except httpx.TransportError as exc:
                if _is_tls_failure(exc):
                    raise ProxmoxTLSError(
                        f"TLS verification of {self.base_url} failed: {exc}. Pin the "
                        "certificate's SHA-256 fingerprint or give the cluster CA file"
                    ) from exc
                if attempt < attempts and isinstance(exc, _RETRYABLE_GET_ERRORS):
                    continue
                raise ProxmoxUnavailableError(
                    f"{method} {path}: connection failed ({type(exc).__name__}: {exc})"
                ) from exc
        if not response.is_success:
            raise error_from_response(response)
        try:
            envelope = response.json()
        except ValueError as exc:
            raise ProxmoxError(
                f"{method} {path}: answer is not JSON", status=response.status_code
            ) from exc
        if not isinstance(envelope, dict) or "data" not in envelope:
            raise ProxmoxError(
                f"{method} {path}: answer has no 'data' envelope", status=response.status_code
            )
        return envelope

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        return (await self._envelope(method, path, params, timeout=timeout))["data"]

    async def _task(self, method: str, path: str, params: Mapping[str, object] | None) -> str:
        data = await self._call(method, path, params)
        if not isinstance(data, str) or not data.startswith("UPID:"):
            raise ProxmoxError(f"{method} {path}: expected a task UPID, got {data!r}")
        return data

    @staticmethod
    def _ct(node: str, vmid: int | str) -> str:
        return f"/nodes/{quote_path(node)}/lxc/{quote_path(as_int(vmid))}"

    # -- cluster and nodes ------------------------------------------------------------

    async def version(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/version"))

    async def nodes(self) -> list[dict[str, Any]]:
        return list(await self._call("GET", "/nodes") or [])

    async def node_status(self, node: str) -> dict[str, Any]:
        return dict(await self._call("GET", f"/nodes/{quote_path(node)}/status"))

    async def cluster_resources(self, type: str | None = "vm") -> list[dict[str, Any]]:
        """Guests (``type="vm"``: both lxc and qemu), or ``node``/``storage``/``sdn``/all.

        Status and stats here lag up to 10 s behind (pvestatd's RRD); ``lock``, ``tags``
        and ``node`` are current, which makes it the cheap "where does CT n live" call.
        """
        items = await self._call("GET", "/cluster/resources", {"type": type})
        return [
            normalize_guest(i) if i.get("type") in ("lxc", "qemu") else dict(i) for i in items or []
        ]

    async def next_id(self, vmid: int | None = None) -> int:
        """The lowest free VMID (or ``vmid`` if free). Reserves nothing: creators can race."""
        return as_int(await self._call("GET", "/cluster/nextid", {"vmid": vmid}))

    # -- containers ---------------------------------------------------------------------

    async def list_containers(self, node: str) -> list[dict[str, Any]]:
        items = await self._call("GET", f"/nodes/{quote_path(node)}/lxc")
        return [normalize_guest(i) for i in items or []]

    async def container_status(self, node: str, vmid: int) -> dict[str, Any]:
        return normalize_guest(await self._call("GET", f"{self._ct(node, vmid)}/status/current"))

    async def get_config(self, node: str, vmid: int, *, current: bool = False) -> dict[str, Any]:
        """The config with pending changes applied (``current=True``: without them)."""
        params = {"current": True} if current else None
        return dict(await self._call("GET", f"{self._ct(node, vmid)}/config", params))

    async def set_config(self, node: str, vmid: int, **params: object) -> None:
        """Change config keys synchronously; ``tags`` may be a list, ``delete`` a list of keys.

        Values are percent-encoded, so ``net0``, ``tags`` and ``description`` keep their
        ``=`` and ``;``.
        """
        await self._call("PUT", f"{self._ct(node, vmid)}/config", params)

    async def clone(
        self,
        node: str,
        vmid: int,
        newid: int,
        *,
        hostname: str | None = None,
        description: str | None = None,
        full: bool | None = None,
        storage: str | None = None,
        target: str | None = None,
    ) -> str:
        """Start a clone and return its UPID (task id = the *source* vmid).

        The source gets a ``disk`` lock for the whole task, so a second clone of the same
        template fails at once with ``ProxmoxLockedError``: serialise clones per source.
        """
        params = {
            "newid": as_int(newid),
            "hostname": hostname,
            "description": description,
            "full": full,
            "storage": storage,
            "target": target,
        }
        return await self._task("POST", f"{self._ct(node, vmid)}/clone", params)

    async def start(self, node: str, vmid: int) -> str:
        return await self._task("POST", f"{self._ct(node, vmid)}/status/start", None)

    async def stop(self, node: str, vmid: int, *, overrule_shutdown: bool | None = None) -> str:
        params = {"overrule-shutdown": overrule_shutdown}
        return await self._task("POST", f"{self._ct(node, vmid)}/status/stop", params)

    async def shutdown(
        self,
        node: str,
        vmid: int,
        *,
        timeout: int | None = None,
        force_stop: bool | None = None,
    ) -> str:
        """Clean shutdown; ``timeout`` is Proxmox's (seconds, default 60) before it gives up."""
        params = {"timeout": timeout, "forceStop": force_stop}
        return await self._task("POST", f"{self._ct(node, vmid)}/status/shutdown", params)

    async def reboot(self, node: str, vmid: int, *, timeout: int | None = None) -> str:
        params = {"timeout": timeout}
        return await self._task("POST", f"{self._ct(node, vmid)}/status/reboot", params)

    async def delete(
        self,
        node: str,
        vmid: int,
        *,
        purge: bool = True,
        destroy_unreferenced_disks: bool = True,
        force: bool = False,
    ) -> str:
        params = {
            "purge": purge,
            "destroy-unreferenced-disks": destroy_unreferenced_disks,
            "force": True if force else None,
        }
        return await self._task("DELETE", self._ct(node, vmid), params)

    async def template(self, node: str, vmid: int) -> None:
        """Convert to a template. Proxmox returns null, not a UPID; ``template`` is set later."""
        await self._call("POST", f"{self._ct(node, vmid)}/template")

    async def interfaces(self, node: str, vmid: int) -> list[dict[str, Any]] | None:
        """The container's interfaces with addresses; ``None`` while it is not running."""
        data = await self._call("GET", f"{self._ct(node, vmid)}/interfaces")
        return None if data is None else list(data)

    async def feature(self, node: str, vmid: int, feature: str = "clone") -> bool:
        data = await self._call("GET", f"{self._ct(node, vmid)}/feature", {"feature": feature})
        return as_flag((data or {}).get("hasFeature"))

    # -- snapshots ----------------------------------------------------------------------

    async def list_snapshots(self, node: str, vmid: int) -> list[dict[str, Any]]:
        """The container's snapshots, oldest first, without the ``current`` pseudo-entry.

        Proxmox lists the present state as a last item named ``current`` (with ``digest``
        and ``running`` instead of ``snaptime`` and ``description``); it is not a snapshot,
        so it is left out here. ``snapstate`` is set while a snapshot is being made or
        deleted (or was left half-done by a failed task).
        """
        items = await self._call("GET", f"{self._ct(node, vmid)}/snapshot")
        snaps = []
        for item in items or []:
            if item.get("name") == "current":
                continue
            snap = dict(item)
            snap["snaptime"] = as_int(snap.get("snaptime") or 0)
            snaps.append(snap)
        return sorted(snaps, key=lambda s: (s["snaptime"], str(s.get("name"))))

    async def create_snapshot(
        self, node: str, vmid: int, snapname: str, *, description: str | None = None
    ) -> str:
        """Start a ``vzsnapshot`` task. A taken name, a lock or a template fail the *task*."""
        params = {"snapname": snapname, "description": description}
        return await self._task("POST", f"{self._ct(node, vmid)}/snapshot", params)

    async def delete_snapshot(
        self, node: str, vmid: int, snapname: str, *, force: bool | None = None
    ) -> str:
        """Start a ``vzdelsnapshot`` task (``force``: drop it from the config even if the
        storage cannot remove the volume snapshot)."""
        path = f"{self._ct(node, vmid)}/snapshot/{quote_path(snapname)}"
        return await self._task("DELETE", path, {"force": force})

    async def rollback_snapshot(
        self, node: str, vmid: int, snapname: str, *, start: bool | None = None
    ) -> str:
        """Start a ``vzrollback`` task. Proxmox stops a running container first (a hard
        stop) and starts it afterwards only with ``start=True``."""
        path = f"{self._ct(node, vmid)}/snapshot/{quote_path(snapname)}/rollback"
        return await self._task("POST", path, {"start": start})

    async def snapshot_config(self, node: str, vmid: int, snapname: str) -> dict[str, Any]:
        """The config saved in the snapshot, with its ``snaptime`` and ``description``."""
        path = f"{self._ct(node, vmid)}/snapshot/{quote_path(snapname)}/config"
        return dict(await self._call("GET", path))

    # -- backups, restore and storage ----------------------------------------------------

    async def storages(self, node: str, *, content: str | None = None) -> list[dict[str, Any]]:
        """The storages ``node`` sees (``content="backup"``: only those that take backups)."""
        items = await self._call("GET", f"/nodes/{quote_path(node)}/storage", {"content": content})
        out = []
        for item in items or []:
            entry = dict(item)
            for key in ("total", "used", "avail"):
                if key in entry:
                    entry[key] = as_int(entry[key])
            for key in ("shared", "active", "enabled"):
                if key in entry:
                    entry[key] = as_flag(entry[key])
            out.append(entry)
        return out

    async def storage_content(
        self,
        node: str,
        storage: str,
        *,
        content: str | None = None,
        vmid: int | None = None,
    ) -> list[dict[str, Any]]:
        """Volumes on ``storage`` as ``node`` sees it (a local storage differs per node)."""
        path = f"/nodes/{quote_path(node)}/storage/{quote_path(storage)}/content"
        items = await self._call("GET", path, {"content": content, "vmid": vmid})
        out = []
        for item in items or []:
            entry = dict(item)
            for key in ("size", "ctime", "vmid", "used"):
                if key in entry:
                    entry[key] = as_int(entry[key])
            if "protected" in entry:
                entry["protected"] = as_flag(entry["protected"])
            out.append(entry)
        return out

    async def backup(
        self,
        node: str,
        vmid: int,
        *,
        storage: str,
        mode: str = "snapshot",
        compress: str = "zstd",
        notes_template: str | None = None,
        protected: bool | None = None,
        remove: bool | None = None,
    ) -> str:
        """Start a ``vzdump`` task for one container; the new archive's volid is in its log.

        The storage and the container's own problems (a lock, a missing config) fail the
        task (a guest's error makes it end with ``job errors``). Proxmox answers ``OK``
        instead of a UPID when the container is on another node: that is an error here.
        ``remove=False`` keeps vzdump from pruning by the storage's retention.
        """
        params = {
            "vmid": str(as_int(vmid)),
            "storage": storage,
            "mode": mode,
            "compress": compress,
            "notes-template": notes_template,
            "protected": protected,
            "remove": remove,
        }
        data = await self._call("POST", f"/nodes/{quote_path(node)}/vzdump", params)
        if not isinstance(data, str) or not data.startswith("UPID:"):
            raise ProxmoxError(
                f"vzdump of {vmid} on {node} started no task (answer {data!r}): the container "
                "is not on that node"
            )
        return data

    async def restore(
        self,
        node: str,
        vmid: int,
        archive: str,
        *,
        storage: str,
        force: bool = False,
        start: bool | None = None,
        unique: bool | None = None,
        **config: object,
    ) -> str:
        """Start a ``vzrestore`` task: ``archive`` (a backup volid) onto ``vmid``.

        ``force=True`` restores over an existing, stopped container of that vmid (its disks
        and snapshots are replaced; a failure late in the task destroys its config).
        ``storage`` is where the new disks go: Proxmox's default, ``local``, usually cannot
        hold containers. ``config`` keys (``hostname``, ``memory``, ...) override the
        backed-up ones.
        """
        params: dict[str, object] = {
            "vmid": as_int(vmid),
            "ostemplate": archive,
            "restore": True,
            "force": True if force else None,
            "storage": storage,
            "start": start,
            "unique": unique,
            **config,
        }
        return await self._task("POST", f"/nodes/{quote_path(node)}/lxc", params)

    async def delete_volume(self, node: str, storage: str, volid: str) -> str:
        """Start an ``imgdel`` task removing ``volid``; a missing backup archive is no error."""
        path = (
            f"/nodes/{quote_path(node)}/storage/{quote_path(storage)}/content/{quote_path(volid)}"
        )
        return await self._task("DELETE", path, None)

    # -- resize and migrate -------------------------------------------------------------

    async def resize_disk(
        self, node: str, vmid: int, size: str, *, disk: str = "rootfs", digest: str | None = None
    ) -> str:
        """Grow ``disk`` (``size="+2G"`` by that much, ``"10G"`` to that size): a ``resize``
        task. Shrinking (``unable to shrink disk size``), the same size and a lock are
        refused at once; Proxmox never shrinks a container's disk."""
        params = {"disk": disk, "size": size, "digest": digest}
        return await self._task("PUT", f"{self._ct(node, vmid)}/resize", params)

    async def migrate(
        self,
        node: str,
        vmid: int,
        target: str,
        *,
        restart: bool | None = None,
        online: bool | None = None,
        target_storage: str | None = None,
        timeout: int | None = None,
        bwlimit: float | None = None,
    ) -> str:
        """Start a ``vzmigrate`` task moving the container to ``target``.

        A running container needs ``restart=True`` (shut down, moved, started on the target;
        ``timeout`` is the shutdown's, default 180 s): LXC has no live migration. Volumes
        on local storage are copied; local snapshots, a lock or an unreachable target fail
        the task with exit status ``migration aborted`` (the reason is in its log).
        """
        params = {
            "target": target,
            "restart": restart,
            "online": online,
            "target-storage": target_storage,
            "timeout": timeout,
            "bwlimit": bwlimit,
        }
        return await self._task("POST", f"{self._ct(node, vmid)}/migrate", params)

    # -- usage history (rrddata) -----------------------------------------------------------

    async def container_rrddata(
        self, node: str, vmid: int, timeframe: str = "hour", cf: str | None = None
    ) -> list[dict[str, Any]]:
        """The container's usage history: 70 points of ``timeframe`` (``hour``: 1 min,
        ``day``: 30 min, ``week``: 3 h, ``month``: 12 h, ``year``: 7 days), oldest first.

        Each point is ``{"time": <epoch s>, "cpu", "maxcpu", "mem", "maxmem", "disk",
        "maxdisk", "netin", "netout", "diskread", "diskwrite"}`` as floats (network and disk
        in bytes/s); a point without data has only ``time``. ``cf``: ``AVERAGE`` (default)
        or ``MAX``.
        """
        path = f"{self._ct(node, vmid)}/rrddata"
        return _rrd_points(await self._call("GET", path, {"timeframe": timeframe, "cf": cf}))

    async def node_rrddata(
        self, node: str, timeframe: str = "hour", cf: str | None = None
    ) -> list[dict[str, Any]]:
        """The node's usage history, as ``container_rrddata``; its data sources are
        ``cpu``, ``maxcpu``, ``iowait``, ``loadavg``, ``memtotal``, ``memused``,
        ``swaptotal``, ``swapused``, ``roottotal``, ``rootused``, ``netin``, ``netout``."""
        path = f"/nodes/{quote_path(node)}/rrddata"
        return _rrd_points(await self._call("GET", path, {"timeframe": timeframe, "cf": cf}))

    # -- tasks --------------------------------------------------------------------------

    async def task_status(self, node: str, upid: str) -> dict[str, Any]:
        path = f"/nodes/{quote_path(node)}/tasks/{quote_path(upid)}/status"
        data = dict(await self._call("GET", path))
        for key in ("pid", "pstart", "starttime"):
            if key in data:
                with contextlib.suppress(ValueError):
                    data[key] = as_int(data[key])
        return data

    async def _task_log_envelope(
        self, node: str, upid: str, start: int, limit: int
    ) -> dict[str, Any]:
        path = f"/nodes/{quote_path(node)}/tasks/{quote_path(upid)}/log"
        return await self._envelope("GET", path, {"start": start, "limit": limit})

    async def task_log(self, node: str, upid: str, start: int = 0, limit: int = 50) -> list[str]:
        """Lines ``start`` (0-based) to ``start + limit`` of the task log, as text."""
        lines = (await self._task_log_envelope(node, upid, start, limit))["data"] or []
        return [str(line.get("t", "")) for line in sorted(lines, key=lambda x: as_int(x["n"]))]

    async def _log_tail(self, upid: Upid) -> list[str]:
        """The last lines of the log; best effort, so the task's own error stays visible."""
        try:
            envelope = await self._task_log_envelope(upid.node, upid.raw, 0, LOG_TAIL_LINES)
            total = as_int(envelope.get("total") or 0)
            if total > LOG_TAIL_LINES:
                return await self.task_log(
                    upid.node, upid.raw, total - LOG_TAIL_LINES, LOG_TAIL_LINES
                )
            lines = envelope["data"] or []
            return [str(x.get("t", "")) for x in sorted(lines, key=lambda x: as_int(x["n"]))]
        except ProxmoxError:
            return []

    async def wait_task(
        self, upid: str | Upid, *, timeout: float = 300.0, expected: float | None = None
    ) -> dict[str, Any]:
        """Poll the task on the node named in its UPID until it stops; return its status.

        ``expected``: how long tasks like this one usually take. The first poll waits until
        just before then and the following ones come every ``EXPECTED_POLL`` seconds for a
        short while, so a serialised chain of clones loses little time to polling.

        ``OK`` and ``WARNINGS: n`` are success. Anything else raises ``ProxmoxTaskError``
        with the exit status and the tail of the task log. Transient errors of the status
        call itself are retried until the deadline: the task runs on whatever happens here.
        """
        parsed = upid if isinstance(upid, Upid) else parse_upid(upid)
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + timeout
        delay = self._poll_interval
        if expected is not None and expected > 0:
            await asyncio.sleep(min(max(0.0, expected * 0.9), max(0.0, deadline - started)))
            delay = EXPECTED_POLL
            started = loop.time() - self._brisk_seconds + 1.0  # brisk for one more second
        while True:
            try:
                status: dict[str, Any] | None = await self.task_status(parsed.node, parsed.raw)
            except ProxmoxError as exc:
                if not is_transient(exc) or loop.time() >= deadline:
                    raise
                status = None
            if status is not None and status.get("status") == "stopped":
                exitstatus = status.get("exitstatus")
                if task_succeeded(exitstatus):
                    return status
                raise ProxmoxTaskError(
                    str(exitstatus or "task stopped without an exit status"),
                    upid=parsed.raw,
                    exitstatus=exitstatus,
                    log=await self._log_tail(parsed),
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ProxmoxTaskTimeoutError(
                    f"task {parsed.type} still running after {timeout:g} s",
                    upid=parsed.raw,
                    exitstatus=None,
                )
            await asyncio.sleep(min(delay, remaining))
            # Most tasks end within a second or two: poll briskly at first, then back off
            # so long clones of big disks do not hammer pveproxy.
            if loop.time() - started > self._brisk_seconds:
                delay = min(delay * 1.5, self._max_poll_interval)
