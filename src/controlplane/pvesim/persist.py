"""Keep a simulated cluster across restarts: its containers (configs, snapshots, status,
addresses, units) as JSON in one file, written atomically.

Tasks in flight are not kept: a container that was locked by one comes back with the lock,
as a real node keeps a stale lock after a crash. Running containers come back running,
on their addresses, with their app answering again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from .models import Container, Unit

VERSION = 1


def dump(sim: Any) -> dict[str, Any]:
    containers = []
    for ct in sim.containers.values():
        data = dataclasses.asdict(ct)
        data["units"] = {name: dataclasses.asdict(u) for name, u in ct.units.items()}
        containers.append(data)
    return {"version": VERSION, "containers": containers, "guest_ips": sim.guest_ips}


def save(sim: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(dump(sim)))
    os.replace(tmp, path)  # a crash leaves the old file or the new one, never half


def read(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    return state


async def load(sim: Any, path: Path) -> int:
    """Restore the containers saved in `path` (if it exists); how many came back."""
    state = await asyncio.to_thread(read, path)
    if state is None or state.get("version") != VERSION:
        return 0
    sim.guest_ips = {int(k): v for k, v in state.get("guest_ips", {}).items()}
    restored = 0
    for data in state["containers"]:
        data["units"] = {name: Unit(**u) for name, u in data.get("units", {}).items()}
        data["journal"] = [tuple(entry) for entry in data.get("journal", [])]
        names = {f.name for f in dataclasses.fields(Container)}
        ct = Container(**{k: v for k, v in data.items() if k in names})
        if ct.node not in sim.nodes:
            continue
        sim.containers[ct.vmid] = ct
        restored += 1
        if ct.status == "running":
            ct.started_at = time.time()
            if ct.runs and ct.runs[-1][1] is None:
                ct.runs[-1][1] = ct.started_at
            ct.runs.append([ct.started_at, None])
            if sim.loopback_ips and ct.ip:
                await sim.guest_apps.start(ct, ct.app_port or sim.app_port)
    return restored
