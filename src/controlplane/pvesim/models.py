"""The simulated cluster's state: nodes, containers, tasks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    name: str
    index: int
    memory_total: int  # bytes
    memory_base_used: int  # bytes the host itself uses, before any container
    cpus: int
    booted_at: float  # epoch seconds
    disk_total: int = 100 * 2**30
    disk_used: int = 12 * 2**30


@dataclass
class Unit:
    """A systemd unit inside a simulated container (``systemctl``/``journalctl`` answer it)."""

    name: str
    description: str
    active: bool = False
    main_pid: int = 0
    active_since: float | None = None
    n_restarts: int = 0


@dataclass
class Container:
    vmid: int
    node: str
    # Typed as PVE returns it: ints for integer/boolean keys, strings otherwise; ``lock``
    # lives here as in the real config file.
    config: dict[str, Any]
    status: str = "stopped"
    started_at: float | None = None
    pid: int | None = None
    ip: str | None = None
    app_port: int | None = None  # overrides the simulator's global app port
    commands: list[dict[str, Any]] = field(default_factory=list)  # pct exec history
    # ``[name]`` sections of the config file: the saved config plus snaptime, description
    # and, while a task works on it, snapstate; ``parent`` is the current state's parent.
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    parent: str | None = None
    # for rrddata: when pvestatd first saw it, the [start, end) spans it ran (end None:
    # still running) and its load while running (cpu share of its cores; mem share of
    # its memory; net and disk in bytes/s)
    created_at: float = field(default_factory=time.time)
    runs: list[list[float | None]] = field(default_factory=list)
    load: dict[str, float] = field(default_factory=dict)
    # inside the container: systemd units and the journal, (time, identifier, message)
    units: dict[str, Unit] = field(default_factory=dict)
    journal: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def lock(self) -> str | None:
        return self.config.get("lock")

    @property
    def is_template(self) -> bool:
        return bool(self.config.get("template"))

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def hostname(self) -> str:
        return str(self.config.get("hostname") or f"CT{self.vmid}")


@dataclass
class Task:
    upid: str
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str  # user@realm!token for token tasks, as in the UPID
    status: str = "running"
    exitstatus: str | None = None
    endtime: int | None = None
    log: list[str] = field(default_factory=list)
    warnings: int = 0
    inject_failure: bool = False  # decided when the task starts (fault injection)
