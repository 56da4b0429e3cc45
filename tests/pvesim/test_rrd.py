"""rrddata of containers and nodes (reference section 18)."""

from __future__ import annotations

import itertools
import time

import httpx

from controlplane.pvesim import Simulator

from .conftest import NOBODY
from .test_fidelity import clone
from .test_snapshots import run

CT_FIELDS = {"time", "maxcpu", "cpu", "maxmem", "mem", "maxdisk", "disk", "netin", "netout",
             "diskread", "diskwrite"}  # fmt: skip
NODE_FIELDS = {"time", "loadavg", "maxcpu", "cpu", "iowait", "memtotal", "memused",
               "swaptotal", "swapused", "roottotal", "rootused", "netin", "netout"}  # fmt: skip
STEPS = {"hour": 60, "day": 1800, "week": 10800, "month": 43200, "year": 604800}


async def rrd(api: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, float]]:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.reason_phrase
    return list(response.json()["data"])


async def test_points_per_timeframe(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    for timeframe, step in STEPS.items():
        points = await rrd(api, "/nodes/pve1/lxc/101/rrddata", timeframe=timeframe)
        times = [int(p["time"]) for p in points]
        assert len(points) == 70, timeframe
        assert all(t % step == 0 for t in times)
        assert [b - a for a, b in itertools.pairwise(times)] == [step] * 69
        last_full = step * int(time.time() // step) - step
        assert times[-1] == last_full
    bad = await api.get("/nodes/pve1/lxc/101/rrddata", params={"timeframe": "decade"})
    assert "enumeration" in bad.json()["errors"]["timeframe"]
    no_frame = await api.get("/nodes/pve1/lxc/101/rrddata")
    assert no_frame.json()["errors"] == {"timeframe": "property is missing and it is not optional"}


async def test_values_follow_the_containers_life(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    points = await rrd(api, "/nodes/pve1/lxc/101/rrddata", timeframe="hour")
    assert set(points[0]) == {"time"}  # before the container existed: no value at all
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/status/start") == "OK"
    sim.backdate(101, 3 * 3600)  # it has run for three hours
    sim.set_load(101, cpu=0.5, netin=10_000.0)
    points = await rrd(api, "/nodes/pve1/lxc/101/rrddata", timeframe="hour")
    assert all(set(p) == CT_FIELDS for p in points)
    assert all(0.4 <= p["cpu"] <= 0.6 for p in points)
    current = (await api.get("/nodes/pve1/lxc/101/status/current")).json()["data"]
    assert current["cpu"] == 0.5  # status/current follows the same load
    assert all(8000 <= p["netin"] <= 12000 for p in points)
    maxmem = 512 * 2**20
    assert all(p["maxmem"] == maxmem and 0.2 * maxmem <= p["mem"] <= 0.3 * maxmem for p in points)
    peaks = await rrd(api, "/nodes/pve1/lxc/101/rrddata", timeframe="hour", cf="MAX")
    assert all(m["cpu"] >= a["cpu"] for m, a in zip(peaks, points, strict=True))
    day = await rrd(api, "/nodes/pve1/lxc/101/rrddata", timeframe="day")
    with_data = [p for p in day if "cpu" in p]
    assert 6 <= len(with_data) <= 8  # three hours of 30-minute points
    # stopped: the database keeps getting zeros
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/status/stop") == "OK"
    sim.containers[101].runs[-1][1] = time.time() - 1800  # it stopped half an hour ago
    points = await rrd(api, "/nodes/pve1/lxc/101/rrddata", timeframe="hour")
    assert points[-1]["cpu"] == 0 and points[-1]["mem"] == 0 and points[-1]["netin"] == 0
    assert points[-1]["maxmem"] == maxmem  # the limits are still recorded
    again = await rrd(api, "/nodes/pve1/lxc/101/rrddata", timeframe="hour")
    assert again == points  # deterministic: two fetches agree


async def test_node_rrddata(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/status/start") == "OK"
    sim.backdate(101, 7200)
    points = await rrd(api, "/nodes/pve1/rrddata", timeframe="hour")
    assert len(points) == 70 and all(set(p) == NODE_FIELDS for p in points)
    node = sim.nodes["pve1"]
    ct_mem = 0.25 * 512 * 2**20
    for p in points:
        assert p["memtotal"] == node.memory_total and p["maxcpu"] == node.cpus
        assert node.memory_base_used + 0.75 * ct_mem <= p["memused"]
        assert p["memused"] <= node.memory_base_used + 1.25 * ct_mem
    other = await rrd(api, "/nodes/pve2/rrddata", timeframe="week", cf="MAX")
    assert len(other) == 70
    denied = await api.get("/nodes/pve1/rrddata", params={"timeframe": "hour"}, headers=NOBODY)
    assert denied.reason_phrase == "Permission check failed (/nodes/pve1, Sys.Audit)"


async def test_unknown_container(api: httpx.AsyncClient) -> None:
    response = await api.get("/nodes/pve1/lxc/555/rrddata", params={"timeframe": "hour"})
    assert (response.status_code, response.reason_phrase) == (
        500,
        "RRD error: opening '/var/lib/rrdcached/db/pve2-vm/555': No such file or directory",
    )
    denied = await api.get(
        "/nodes/pve1/lxc/9000/rrddata", params={"timeframe": "hour"}, headers=NOBODY
    )
    assert denied.reason_phrase == "Permission check failed (/vms/9000, VM.Audit)"


async def test_rrddata_is_not_proxied_so_the_node_in_the_path_is_not_looked_up(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    await clone(api, sim, 101)
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/status/start") == "OK"
    sim.backdate(101, 3600)
    mine = await rrd(api, "/nodes/pve1/lxc/101/rrddata", timeframe="hour")
    # Any node answers for any guest (the files are cluster-wide), even one that is no member.
    assert await rrd(api, "/nodes/pve2/lxc/101/rrddata", timeframe="hour") == mine
    assert await rrd(api, "/nodes/elsewhere/lxc/101/rrddata", timeframe="hour") == mine
    response = await api.get("/nodes/elsewhere/rrddata", params={"timeframe": "hour"})
    assert (response.status_code, response.reason_phrase) == (
        500,
        "RRD error: opening '/var/lib/rrdcached/db/pve2-node/elsewhere': No such file or directory",
    )
    proxied = await api.get("/nodes/elsewhere/lxc/101/status/current")
    assert proxied.reason_phrase.startswith("hostname lookup 'elsewhere' failed")
