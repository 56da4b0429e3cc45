"""Memory of processes on this machine, from /proc (Linux only): for the scale suite's figures."""

from __future__ import annotations

import os
from pathlib import Path

MIB = 1024 * 1024


def _status_field(pid: int, name: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, ...) in bytes; PPid as is."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            value = line.split()[1]
            return int(value) if name == "PPid" else int(value) * 1024
    return 0


def children(pid: int) -> list[int]:
    """The living direct children of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if _status_field(int(entry), "PPid") == pid:
                found.append(int(entry))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # it ended while we looked
    return found


def rss(pid: int) -> int:
    return _status_field(pid, "VmRSS")


def pss(pid: int) -> int:
    """Proportional set size: shared pages (PostgreSQL's shared buffers) counted once overall."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def parent(pid: int) -> int:
    return _status_field(pid, "PPid")


def server_pss(backend_pid: int) -> tuple[int, int]:
    """PostgreSQL's memory: the PSS summed over the postmaster and all its children (found
    from one backend's pid, whose parent is the postmaster), and how many processes."""
    postmaster = parent(backend_pid)
    total, count = 0, 0
    for pid in [postmaster, *children(postmaster)]:
        try:
            total += pss(pid)
            count += 1
        except (FileNotFoundError, ProcessLookupError):
            continue  # a backend that just exited
    return total, count


def mib(n: int) -> float:
    return round(n / MIB, 1)
