"""The state of a simulated Proxmox VE cluster and its task machinery.

One ``Simulator`` is a small cluster: nodes with memory, one template container per node,
cluster-wide VMIDs, API tokens, tasks that take time. Everything runs on one asyncio loop:
request handlers are synchronous, so a check and the lock it sets happen in one step, the
way PVE takes its locks before it returns a UPID. Tasks are asyncio tasks that sleep for a
configurable time per type, created lazily on the running loop (nothing at construction).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import guestshell
from .auth import DEFAULT_TOKEN_ID, DEFAULT_TOKEN_SECRET, Token
from .errors import config_missing
from .faults import Faults
from .guestapps import GuestApps
from .models import Container, Node, Task
from .propstr import disk_size_bytes, random_mac
from .storage import BackupVolume, Storage, default_storages

__all__ = ["DEFAULT_TOKEN_ID", "DEFAULT_TOKEN_SECRET", "Simulator"]
DEFAULT_DURATIONS = {
    "vzclone": 0.2,
    "vzstart": 0.1,
    "vzstop": 0.05,
    "vzshutdown": 0.1,
    "vzreboot": 0.15,
    "vzdestroy": 0.1,
    "vztemplate": 0.05,
    "vzsnapshot": 0.05,
    "vzdelsnapshot": 0.05,
    "vzrollback": 0.1,
    # backup, restore and migration take a base time plus a time per GiB of disk
    "vzdump": 0.05,
    "vzdump_per_gib": 0.005,
    "vzrestore": 0.05,
    "vzrestore_per_gib": 0.005,
    "imgdel": 0.02,
    "resize": 0.05,
    "vzmigrate": 0.1,
    "vzmigrate_per_gib": 0.005,
}
PVE_VERSION = {"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a8503f96d"}
MiB = 2**20


class TaskFailed(Exception):
    """Raised inside a task body: the task ends with this text as its exit status."""


class Simulator:
    def __init__(
        self,
        nodes: Sequence[str] = ("pve1", "pve2"),
        *,
        tokens: Iterable[Token] | None = None,
        template_vmids: Sequence[int] | None = None,
        node_memory_mb: int = 65536,
        node_cpus: int = 8,
        task_durations: Mapping[str, float] | None = None,
        loopback_ips: bool = False,
        app_port: int = 8080,
        faults: Faults | None = None,
        seed: int = 0,
        auth_failure_delay: float = 0.0,
        message_in_body: bool = True,
        legacy_vmid_strings: bool = False,
        rrd_interval: float = 0.0,
        storage: str = "local-lvm",
        shared_storage: bool = False,
        storage_type: str | None = None,
        ssl_fingerprint: str | None = None,
        extra_storages: Sequence[Storage] = (),
        guest_units: Sequence[str] = ("app.service",),
    ) -> None:
        """A cluster of ``nodes``, each with one stopped template (9000, 9001, ... by default).

        ``auth_failure_delay``: PVE holds every 401 back ~3 s; 0 keeps tests fast.
        ``message_in_body``: PVE >= 8.3 repeats the error text as ``message`` in JSON bodies.
        ``legacy_vmid_strings``: list vmids as strings, like PVE < 8.2.
        ``rrd_interval``: ``/cluster/resources`` status and stats refresh only this often
        (PVE: 10 s); 0 makes them live.
        ``shared_storage``: allow ``clone --target`` to another node.
        ``storage_type``: the guest-disk storage's type (``lvmthin`` by default, ``rbd``
        when shared); on a local ``zfspool`` linked clones name their base image, and a
        migration refuses them (``clone of 'base-...'``).
        ``extra_storages``: storages besides ``local`` and ``storage`` (a shared backup store).
        ``guest_units``: systemd units every container has (they start with it).
        """
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        if template_vmids is None:
            template_vmids = [9000 + i for i in range(len(nodes))]
        if len(template_vmids) != len(nodes):
            raise ValueError("give one template vmid per node")
        self.rng = random.Random(seed)
        now = time.time()
        self.nodes: dict[str, Node] = {
            name: Node(
                name=name,
                index=i,
                memory_total=node_memory_mb * MiB,
                memory_base_used=min(2048, node_memory_mb // 8) * MiB,
                cpus=node_cpus,
                booted_at=now - 86400 - i * 3600,
            )
            for i, name in enumerate(nodes)
        }
        token_list = list(tokens) if tokens is not None else [
            Token(DEFAULT_TOKEN_ID, DEFAULT_TOKEN_SECRET)
        ]  # fmt: skip
        self.tokens: dict[str, Token] = {t.tokenid: t for t in token_list}
        self.durations = {**DEFAULT_DURATIONS, **(task_durations or {})}
        self.loopback_ips = loopback_ips
        self.guest_ips: dict[int, str] = {}  # set_guest_address
        self.app_port = app_port
        self.faults = faults or Faults()
        self.auth_failure_delay = auth_failure_delay
        self.message_in_body = message_in_body
        self.legacy_vmid_strings = legacy_vmid_strings
        self.rrd_interval = rrd_interval
        self.storage = storage
        self.shared_storage = shared_storage
        self.ssl_fingerprint = ssl_fingerprint
        self.containers: dict[int, Container] = {}
        self.tasks: dict[str, Task] = {}
        self.guest_apps = GuestApps()
        self._workers: set[asyncio.Task[None]] = set()
        self._worker_of: dict[str, asyncio.Task[None]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._rrd: dict[int, dict[str, Any]] = {}
        self._rrd_at = float("-inf")
        for name, vmid in zip(nodes, template_vmids, strict=True):
            self.containers[vmid] = self._template(name, vmid)
        # storages and their backup volumes, keyed by (node, volid); node "" when shared
        self.storages: dict[str, Storage] = {
            s.storage: s
            for s in [*default_storages(storage, shared_storage, storage_type), *extra_storages]
        }
        self.backups: dict[tuple[str, str], BackupVolume] = {}
        self.job_locks: dict[str, asyncio.Lock] = {}  # vzdump's global lock, per node
        self.offline_nodes: set[str] = set()
        self.guest_units = tuple(guest_units)

    def _template(self, node: str, vmid: int) -> Container:
        return Container(
            vmid=vmid,
            node=node,
            config={
                "arch": "amd64",
                "cores": 1,
                "hostname": f"debian-12-tpl-{node}",
                "memory": 512,
                "swap": 512,
                "net0": f"name=eth0,bridge=vmbr0,hwaddr={random_mac(self.rng)},ip=dhcp,type=veth",
                "ostype": "debian",
                "rootfs": f"{self.storage}:base-{vmid}-disk-0,size=8G",
                "template": 1,
                "unprivileged": 1,
                "description": "Debian 12 template (simulated)",
            },
        )

    # -- lookups --------------------------------------------------------------------------

    def container_on(self, node: str, vmid: int) -> Container:
        """The container if its config is on ``node``; else PVE's "does not exist" 500."""
        ct = self.containers.get(vmid)
        if ct is None or ct.node != node:
            raise config_missing(node, vmid)
        return ct

    def vmid_owner(self, vmid: int) -> Container | None:
        return self.containers.get(vmid)

    def ip_for(self, vmid: int) -> str:
        """A stable address per VMID: 127.100+.x.y with ``loopback_ips``, else 10.x.y.z."""
        if self.loopback_ips:
            return f"127.{100 + (vmid >> 16) % 100}.{(vmid >> 8) & 255}.{vmid & 255}"
        return f"10.{(vmid >> 16) & 255}.{(vmid >> 8) & 255}.{vmid & 255}"

    # -- stats ----------------------------------------------------------------------------

    def container_mem(self, ct: Container) -> int:
        if not ct.running:
            return 0
        share = ct.load.get("mem")  # Simulator.set_load; a quarter by default
        return (
            self.container_maxmem(ct) // 4
            if share is None
            else int(self.container_maxmem(ct) * share)
        )

    @staticmethod
    def container_maxmem(ct: Container) -> int:
        return int(ct.config.get("memory", 512)) * MiB

    def node_memory_used(self, node: Node) -> int:
        used = node.memory_base_used
        used += sum(self.container_mem(c) for c in self.containers.values() if c.node == node.name)
        return min(used, node.memory_total)

    def container_stats(self, ct: Container) -> dict[str, Any]:
        """One entry of ``GET /nodes/{node}/lxc`` (and the base of status/current)."""
        now = time.time()
        maxmem = self.container_maxmem(ct)
        maxdisk = disk_size_bytes(str(ct.config.get("rootfs", "")))
        uptime = int(now - ct.started_at) if ct.running and ct.started_at else 0
        cpus = ct.config.get("cores") or ct.config.get("cpulimit") or self.nodes[ct.node].cpus
        entry: dict[str, Any] = {
            "vmid": str(ct.vmid) if self.legacy_vmid_strings else ct.vmid,
            "name": "".join(ct.hostname.split()),
            "status": ct.status,
            "type": "lxc",
            "cpus": float(cpus) if isinstance(cpus, str) else cpus,
            "maxmem": maxmem,
            "maxswap": int(ct.config.get("swap", 512)) * MiB,
            "maxdisk": maxdisk,
            "disk": maxdisk // 10 if ct.running else 0,
            "mem": self.container_mem(ct),
            "swap": 0,
            "uptime": uptime,
            "cpu": ct.load.get("cpu", 0.01) if ct.running else 0,
            "netin": int(uptime * ct.load.get("netin", 1200)) if ct.running else 0,
            "netout": int(uptime * ct.load.get("netout", 800)) if ct.running else 0,
            "diskread": int(uptime * ct.load.get("diskread", 4096)) if ct.running else 0,
            "diskwrite": int(uptime * ct.load.get("diskwrite", 2048)) if ct.running else 0,
        }
        if ct.running and ct.pid:
            entry["pid"] = ct.pid
        if ct.is_template:
            entry["template"] = 1
        if ct.lock:
            entry["lock"] = ct.lock
        if ct.config.get("tags"):
            entry["tags"] = ct.config["tags"]
        return entry

    def rrd_view(self, ct: Container) -> dict[str, Any] | None:
        """Stats as pvestatd last saw them (None: not seen yet), refreshed every interval."""
        if self.rrd_interval <= 0:
            return self.container_stats(ct)
        now = time.monotonic()
        if now - self._rrd_at >= self.rrd_interval:
            self._rrd = {v: self.container_stats(c) for v, c in self.containers.items()}
            self._rrd_at = now
        return self._rrd.get(ct.vmid)

    # -- tasks ----------------------------------------------------------------------------

    def _upid(self, node: str, type_: str, id_: str, user: str) -> tuple[str, int, int, int]:
        pid = self.rng.randrange(0x1000, 0x3FFFFF)
        pstart = int((time.time() - self.nodes[node].booted_at) * 100)
        starttime = int(time.time())
        upid = f"UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{type_}:{id_}:{user}:"
        return upid, pid, pstart, starttime

    def draw(self, rate: float) -> bool:
        """True with probability ``rate``; draws nothing when the rate is 0."""
        return rate > 0 and self.rng.random() < rate

    def start_task(
        self,
        node: str,
        type_: str,
        id_: str,
        token: Token,
        body: Callable[[Task], Awaitable[None]],
        *,
        cleanup: Callable[[Task], None] | None = None,
    ) -> Task:
        """Register a task and run ``body`` as an asyncio task; return it at once.

        ``body`` raises ``TaskFailed`` to end with an error; ``cleanup`` runs in any case
        (PVE releases a clone's source lock whatever happens).
        """
        upid, pid, pstart, starttime = self._upid(node, type_, id_, token.tokenid)
        task = Task(upid, node, pid, pstart, starttime, type_, id_, token.tokenid)
        task.inject_failure = self.draw(self.faults.task_failure_rate)
        if not task.inject_failure and self.draw(self.faults.task_warning_rate):
            task.warnings = 1
            task.log.append("WARN: systemd 252 detected. You may need to enable nesting.")
        self.tasks[upid] = task
        worker = asyncio.get_running_loop().create_task(self._run(task, body, cleanup))
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)
        self._worker_of[upid] = worker
        worker.add_done_callback(lambda _w: self._worker_of.pop(upid, None))
        return task

    def cancel_task(self, upid: str) -> None:
        """Kill a running task, as ``vzdump --stop`` does (exit: ``interrupted by signal``)."""
        worker = self._worker_of.get(upid)
        if worker is not None:
            worker.cancel()

    async def _run(
        self,
        task: Task,
        body: Callable[[Task], Awaitable[None]],
        cleanup: Callable[[Task], None] | None,
    ) -> None:
        exitstatus = "OK"
        try:
            await body(task)
        except TaskFailed as exc:
            exitstatus = str(exc)
        except asyncio.CancelledError:
            exitstatus = "interrupted by signal"
            raise
        except Exception as exc:  # a simulator bug must still end the task visibly
            exitstatus = f"internal simulator error: {exc!r}"
        finally:
            if cleanup is not None:
                cleanup(task)
            if exitstatus == "OK" and task.warnings:
                exitstatus = f"WARNINGS: {task.warnings}"
            task.status = "stopped"
            task.exitstatus = exitstatus
            task.endtime = int(time.time())
            if exitstatus == "OK" or exitstatus.startswith("WARNINGS: "):
                task.log.append(f"TASK {exitstatus}")
            else:
                task.log.append("TASK ERROR: " + exitstatus.replace("\n", " "))

    async def pause(self, type_: str) -> None:
        await asyncio.sleep(self.durations.get(type_, 0.05))

    async def pause_for_disk(self, type_: str, size_bytes: int) -> None:
        """The base time of ``type_`` plus its ``<type>_per_gib`` for ``size_bytes``."""
        per_gib = self.durations.get(f"{type_}_per_gib", 0.0)
        await asyncio.sleep(self.durations.get(type_, 0.05) + per_gib * size_bytes / 2**30)

    def later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``seconds`` on the loop (stuck locks, delayed releases)."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            callback()

        handle = loop.call_later(seconds, fire)
        self._timers.add(handle)

    # -- container life events (also used by the SSH side) -------------------------------

    async def container_started(self, ct: Container) -> None:
        ct.status = "running"
        ct.started_at = time.time()
        ct.runs.append([ct.started_at, None])
        guestshell.boot(ct, self.guest_units, self.rng)
        ct.pid = self.rng.randrange(10000, 4000000)
        ct.ip = self.guest_ips.get(ct.vmid) or self.ip_for(ct.vmid)
        if self.loopback_ips:
            await self.guest_apps.start(ct, ct.app_port or self.app_port)

    async def container_stopped(self, ct: Container) -> None:
        if ct.runs and ct.runs[-1][1] is None:
            ct.runs[-1][1] = time.time()
        guestshell.halt(ct)
        ct.status = "stopped"
        ct.started_at = None
        ct.pid = None
        ct.ip = None
        await self.guest_apps.stop(ct.vmid)

    # -- simulator-only hooks -------------------------------------------------------------

    def stick_lock(self, vmid: int, lock: str, seconds: float) -> None:
        """Put ``lock`` on a container for ``seconds`` (a crashed backup, a stuck migrate)."""
        ct = self.containers[vmid]
        ct.config["lock"] = lock

        def release() -> None:
            if ct.config.get("lock") == lock:
                ct.config.pop("lock", None)

        self.later(seconds, release)

    def set_load(self, vmid: int, **load: float) -> None:
        """What a running container does, for rrddata: ``cpu`` (share of its cores),
        ``mem`` (share of its memory), ``netin``/``netout``/``diskread``/``diskwrite``
        (bytes/s)."""
        self.containers[vmid].load.update(load)

    def add_unit(self, vmid: int, name: str, description: str | None = None) -> None:
        """Give one container a systemd unit (started at once if the container runs)."""
        ct = self.containers[vmid]
        unit = guestshell.add_unit(ct, name, description)
        if ct.running and not unit.active:
            guestshell.start_unit(ct, unit, self.rng)

    def backdate(self, vmid: int, seconds: float) -> None:
        """Pretend the container was created, and has run (if it runs), ``seconds`` longer:
        its rrddata then has that much history."""
        ct = self.containers[vmid]
        ct.created_at -= seconds
        if ct.running and ct.started_at is not None:
            ct.started_at -= seconds
            if ct.runs and ct.runs[-1][1] is None and ct.runs[-1][0] is not None:
                ct.runs[-1][0] -= seconds

    def set_node_online(self, node: str, online: bool) -> None:
        """Take a node off the cluster network (``/nodes`` says offline, migrations to it
        fail) or bring it back."""
        if node not in self.nodes:
            raise KeyError(node)
        if online:
            self.offline_nodes.discard(node)
        else:
            self.offline_nodes.add(node)

    def set_guest_address(self, vmid: int, ip: str | None) -> None:
        """Root inside CT ``vmid`` sets its interface to ``ip`` (None: back to ours).

        The interfaces report it at once while running, and from every start on (also for
        a VMID whose container does not exist yet: a template whose network is wrong).
        """
        if ip is None:
            self.guest_ips.pop(vmid, None)
        else:
            self.guest_ips[vmid] = ip
        ct = self.containers.get(vmid)
        if ct is not None and ct.running:
            ct.ip = ip or self.ip_for(vmid)

    def set_app_port(self, vmid: int, port: int) -> None:
        """The port of the container's loopback app, from its next start on."""
        self.containers[vmid].app_port = port

    def _app_port_of(self, ct: Container) -> int | None:
        """The bound port while the loopback app runs, else the configured one."""
        if not self.loopback_ips:
            return None
        return self.guest_apps.port_of(ct.vmid) or ct.app_port or self.app_port

    def state(self) -> dict[str, Any]:
        """Everything, for ``GET /_sim/state``: tests and benchmarks assert on this."""
        return {
            "nodes": [
                {
                    "node": n.name,
                    "memory_total": n.memory_total,
                    "memory_used": self.node_memory_used(n),
                    "cpus": n.cpus,
                }
                for n in self.nodes.values()
            ],
            "containers": [
                {
                    "vmid": c.vmid,
                    "node": c.node,
                    "status": c.status,
                    "lock": c.lock,
                    "tags": c.config.get("tags"),
                    "template": int(c.is_template),
                    "ip": c.ip,
                    "app_port": self._app_port_of(c),
                    "config": dict(c.config),
                    "commands": list(c.commands),
                    "snapshots": sorted(c.snapshots),
                }
                for c in sorted(self.containers.values(), key=lambda c: c.vmid)
            ],
            "backups": [
                {
                    "volid": b.volid,
                    "node": b.node,
                    "vmid": b.vmid,
                    "size": b.size,
                    "protected": b.protected,
                }
                for _key, b in sorted(self.backups.items(), key=lambda kv: kv[0])
            ],
            "tasks": [
                {
                    "upid": t.upid,
                    "node": t.node,
                    "type": t.type,
                    "id": t.id,
                    "user": t.user,
                    "status": t.status,
                    "exitstatus": t.exitstatus,
                    "starttime": t.starttime,
                    "endtime": t.endtime,
                }
                for t in self.tasks.values()
            ],
            "faults": self.faults.as_dict(),
        }

    def save(self, path: Path) -> None:
        """Write the containers to `path` (JSON, atomically): see controlplane.pvesim.persist."""
        from .persist import save

        save(self, path)

    async def load(self, path: Path) -> int:
        """Bring back the containers saved in `path`; the number restored (0: no file)."""
        from .persist import load

        return await load(self, path)

    async def close(self) -> None:
        """Cancel running tasks and timers, stop the loopback apps."""
        for handle in list(self._timers):
            handle.cancel()
        self._timers.clear()
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)
        await self.guest_apps.close()
