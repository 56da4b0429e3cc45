"""``rrddata`` of containers and nodes, shaped like pve-cluster's PVE::RRD::create_rrd_data.

PVE 8 keeps a round-robin database per guest (``pve2-vm/<vmid>``) and per node
(``pve2-node/<node>``), fed every 10 s by pvestatd, with one archive per timeframe: 70
points of 1 min (hour), 30 min (day), 3 h (week), 12 h (month) and 7 days (year), each as
AVERAGE and MAX (pve-cluster ``status.c`` ``rrd_def_vm``/``rrd_def_node``). A fetch gives
one entry per point, ``{"time": <epoch s>, <data source>: <value>, ...}``, and only
``time`` where the database has no value (before the guest existed). Network and disk
counters are DERIVE data sources: bytes per second.

The simulator computes the points from what it knows: when each container existed and
ran, and its ``load`` (``Simulator.set_load``). A point's AVERAGE is the load times the
share of that interval the container ran; MAX is the load (plus its noise) if it ran at
all. The noise is a deterministic function of the container and the time, so two fetches
agree.
"""

from __future__ import annotations

import random
import time
from typing import Any

from .auth import Token
from .errors import fail
from .models import Container
from .propstr import disk_size_bytes
from .simulator import Simulator

# timeframe: (resolution in seconds, points) as in PVE::RRD (pve-cluster src/PVE/RRD.pm)
TIMEFRAMES = {
    "hour": (60, 70),
    "day": (60 * 30, 70),
    "week": (60 * 180, 70),
    "month": (60 * 720, 70),
    "year": (60 * 10080, 70),
}
DEFAULT_LOAD = {
    "cpu": 0.01,  # share of the container's cores
    "mem": 0.25,  # share of its memory (what status/current reports too)
    "netin": 1200.0,
    "netout": 800.0,
    "diskread": 4096.0,
    "diskwrite": 2048.0,
}
MiB = 2**20


def _points(timeframe: str, now: float) -> list[int]:
    reso, count = TIMEFRAMES[timeframe]
    ctime = reso * int(now // reso)
    start = ctime - reso * count
    return [start + i * reso for i in range(count)]


def _ran(ct: Container, start: float, end: float, now: float) -> float:
    """The share of [start, end) the container was running."""
    total = 0.0
    for begin, finish in ct.runs:
        if begin is None:
            continue
        stop = now if finish is None else finish
        total += max(0.0, min(end, stop) - max(start, begin))
    return min(total / (end - start), 1.0)


def _noise(vmid: int | str, t: int, key: str) -> float:
    """A deterministic factor in [0.8, 1.2) for this container, point and data source."""
    return 0.8 + 0.4 * random.Random(f"{vmid}:{t}:{key}").random()


def container_point(ct: Container, t: int, reso: int, now: float, cf: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"time": t}
    if t + reso <= ct.created_at:
        return entry  # the database has no value for a time before the guest existed
    load = {**DEFAULT_LOAD, **ct.load}
    share = _ran(ct, t, t + reso, now)
    ran = 1.0 if share > 0 else 0.0
    weight = share if cf == "AVERAGE" else ran
    peak = 1.0 if cf == "AVERAGE" else 1.15  # a maximum sits above the mean
    cores = ct.config.get("cores") or 1
    maxmem = int(ct.config.get("memory", 512)) * MiB
    maxdisk = disk_size_bytes(str(ct.config.get("rootfs", "")))

    def value(key: str, scale: float) -> float:
        return round(scale * load[key] * weight * peak * _noise(ct.vmid, t, key), 6)

    entry.update(
        maxcpu=float(cores),
        cpu=min(value("cpu", 1.0), 1.0),
        maxmem=float(maxmem),
        mem=min(value("mem", maxmem), float(maxmem)),
        maxdisk=float(maxdisk),
        disk=float(maxdisk // 10) * ran,
        netin=value("netin", 1.0),
        netout=value("netout", 1.0),
        diskread=value("diskread", 1.0),
        diskwrite=value("diskwrite", 1.0),
    )
    return entry


def container_rrddata(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    vmid = p["vmid"]  # `node` plays no part: any node answers for any guest, even a bogus one
    ct = sim.containers.get(vmid)
    if ct is None:  # the handler reads the file without loading any config
        raise fail(
            f"RRD error: opening '/var/lib/rrdcached/db/pve2-vm/{vmid}': No such file or directory"
        )
    reso, _ = TIMEFRAMES[p["timeframe"]]
    now = time.time()
    cf = p.get("cf") or "AVERAGE"
    return [container_point(ct, t, reso, now, cf) for t in _points(p["timeframe"], now)]


def node_rrddata(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node = sim.nodes.get(p["node"])
    if node is None:  # not proxied: the handler opens a file no node ever wrote
        raise fail(
            f"RRD error: opening '/var/lib/rrdcached/db/pve2-node/{p['node']}': "
            "No such file or directory"
        )
    reso, _ = TIMEFRAMES[p["timeframe"]]
    now = time.time()
    cf = p.get("cf") or "AVERAGE"
    guests = [c for c in sim.containers.values() if c.node == node.name]
    out = []
    for t in _points(p["timeframe"], now):
        entry: dict[str, Any] = {"time": t}
        if t + reso <= node.booted_at:
            out.append(entry)
            continue
        points = [container_point(c, t, reso, now, cf) for c in guests]
        points = [x for x in points if "cpu" in x]
        cpu_cores = sum(x["cpu"] * x["maxcpu"] for x in points)
        mem = node.memory_base_used + sum(x["mem"] for x in points)
        entry.update(
            loadavg=round(0.1 + cpu_cores, 2),
            maxcpu=float(node.cpus),
            cpu=round(min(0.015 * _noise(node.name, t, "cpu") + cpu_cores / node.cpus, 1.0), 6),
            iowait=round(0.001 * _noise(node.name, t, "iowait"), 6),
            memtotal=float(node.memory_total),
            memused=float(min(mem, node.memory_total)),
            swaptotal=float(8 * 2**30),
            swapused=0.0,
            roottotal=float(node.disk_total),
            rootused=float(node.disk_used),
            netin=round(sum(x["netin"] for x in points) + 300 * _noise(node.name, t, "in"), 6),
            netout=round(sum(x["netout"] for x in points) + 200 * _noise(node.name, t, "out"), 6),
        )
        out.append(entry)
    return out
