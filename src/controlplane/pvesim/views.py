"""Handlers of the read-only endpoints. Each takes ``(sim, token, params)`` and returns data.

Shapes follow PVE 8.4 (docs/proxmox-reference.md section 4): ints everywhere except ``nextid`` (a
string), ``null`` interfaces for a stopped container, list endpoints that filter by
privilege instead of answering 403.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .auth import Token
from .errors import PveError, fail, param_error
from .models import Container, Task
from .propstr import description_as_read, parse_property_string
from .simulator import PVE_VERSION, Simulator

_UPID_RE = re.compile(
    r"^UPID:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?:[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8,9}:"
    r"[0-9A-Fa-f]{8}:[^:\s/]+:[^:\s/]*:[^:\s/]+:$"
)


@dataclass
class Reply:
    """Data plus extra envelope members (``total`` of the task log)."""

    data: Any
    extra: dict[str, Any] = field(default_factory=dict)


def version(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    return dict(PVE_VERSION)


def nodes(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    now = time.time()
    out = []
    for n in sim.nodes.values():
        entry: dict[str, Any] = {
            "node": n.name,
            "status": "offline" if n.name in sim.offline_nodes else "online",
            "id": f"node/{n.name}",
            "type": "node",
            "level": "",
        }
        if sim.ssl_fingerprint:
            entry["ssl_fingerprint"] = sim.ssl_fingerprint
        if token.has(f"/nodes/{n.name}", "Sys.Audit"):
            entry.update(
                cpu=0.021,
                maxcpu=n.cpus,
                mem=sim.node_memory_used(n),
                maxmem=n.memory_total,
                disk=n.disk_used,
                maxdisk=n.disk_total,
                uptime=int(now - n.booted_at),
            )
        out.append(entry)
    return out


def node_status(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    n = sim.nodes[p["node"]]
    used = sim.node_memory_used(n)
    cache = n.memory_total // 10
    # PVE 8.4 semantics: used = total - MemAvailable, free = MemFree (page cache in neither).
    free = max(n.memory_total - used - cache, 0)
    return {
        "uptime": int(time.time() - n.booted_at),
        "idle": 0,
        "wait": 0.0012,
        "cpu": 0.021,
        "loadavg": ["0.16", "0.10", "0.02"],
        "cpuinfo": {
            "model": "Simulated CPU @ 3.00GHz",
            "sockets": 1,
            "cores": max(n.cpus // 2, 1),
            "cpus": n.cpus,
            "mhz": "3000.000",
            "hvm": "1",
            "user_hz": 100,
            "flags": "fpu vme de pse tsc msr pae",
        },
        "memory": {"total": n.memory_total, "used": used, "free": free},
        "swap": {"total": 8 * 2**30, "used": 0, "free": 8 * 2**30},
        "ksm": {"shared": 0},
        "rootfs": {
            "total": n.disk_total,
            "used": n.disk_used,
            "free": n.disk_total - n.disk_used,
            "avail": n.disk_total - n.disk_used,
        },
        "kversion": "Linux 6.8.12-15-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-15 (2025-09-12T11:02Z)",
        "current-kernel": {
            "sysname": "Linux",
            "release": "6.8.12-15-pve",
            "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.8.12-15 (2025-09-12T11:02Z)",
            "machine": "x86_64",
        },
        "boot-info": {"mode": "efi", "secureboot": 0},
        "pveversion": f"pve-manager/{PVE_VERSION['version']}/{PVE_VERSION['repoid']}",
    }


def _resource_entry(sim: Simulator, ct: Container) -> dict[str, Any]:
    view = sim.rrd_view(ct)
    entry: dict[str, Any] = {"id": f"lxc/{ct.vmid}", "type": "lxc", "vmid": ct.vmid}
    entry["node"] = ct.node
    if view is None:  # pvestatd has not seen it yet
        entry.update(status="unknown", template=int(ct.is_template))
    else:
        entry.update(
            status=view["status"],
            name=view["name"],
            template=int(ct.is_template),
            uptime=view["uptime"],
            maxcpu=view["cpus"],
            cpu=view["cpu"],
            maxmem=view["maxmem"],
            mem=view["mem"],
            maxdisk=view["maxdisk"],
            disk=view["disk"],
            netin=view["netin"],
            netout=view["netout"],
            diskread=view["diskread"],
            diskwrite=view["diskwrite"],
        )
    # lock and tags come from the config, so they are never stale
    if ct.lock:
        entry["lock"] = ct.lock
    if ct.config.get("tags"):
        entry["tags"] = ct.config["tags"]
    return entry


def cluster_resources(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    kind = p.get("type")
    out: list[dict[str, Any]] = []
    now = time.time()
    if kind in (None, "vm"):
        for ct in sorted(sim.containers.values(), key=lambda c: c.vmid):
            if token.has(f"/vms/{ct.vmid}", "VM.Audit"):
                out.append(_resource_entry(sim, ct))
    for n in sim.nodes.values():
        if kind in (None, "node") and token.has(f"/nodes/{n.name}", "Sys.Audit"):
            out.append(
                {
                    "id": f"node/{n.name}",
                    "type": "node",
                    "node": n.name,
                    "status": "online",
                    "level": "",
                    "cgroup-mode": 2,
                    "cpu": 0.021,
                    "maxcpu": n.cpus,
                    "mem": sim.node_memory_used(n),
                    "maxmem": n.memory_total,
                    "disk": n.disk_used,
                    "maxdisk": n.disk_total,
                    "uptime": int(now - n.booted_at),
                }
            )
        if kind in (None, "storage") and token.has(f"/storage/{sim.storage}", "Datastore.Audit"):
            out.append(
                {
                    "id": f"storage/{n.name}/{sim.storage}",
                    "type": "storage",
                    "node": n.name,
                    "storage": sim.storage,
                    "status": "available",
                    "plugintype": sim.storages[sim.storage].type,
                    "content": "rootdir,images",
                    "shared": int(sim.shared_storage),
                    "disk": 20 * 2**30,
                    "maxdisk": 500 * 2**30,
                }
            )
        if kind in (None, "sdn") and token.has("/sdn/zones/localnetwork", "SDN.Audit"):
            out.append(
                {
                    "id": f"sdn/{n.name}/localnetwork",
                    "type": "sdn",
                    "node": n.name,
                    "sdn": "localnetwork",
                    "status": "ok",
                }
            )
    return out


def nextid(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    wanted = p.get("vmid")
    if wanted is not None:
        if sim.vmid_owner(wanted) is not None:
            raise param_error({"vmid": f"VM {wanted} already exists"})
        return str(wanted)  # Perl stringifies it: nextid is a JSON string
    for vmid in range(100, 1_000_000):
        if sim.vmid_owner(vmid) is None:
            return str(vmid)
    raise fail("unable to get any free VMID in range [100, 1000000]")


def lxc_list(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    cts = sorted((c for c in sim.containers.values() if c.node == p["node"]), key=lambda c: c.vmid)
    return [sim.container_stats(c) for c in cts if token.has(f"/vms/{c.vmid}", "VM.Audit")]


def lxc_index(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    sim.container_on(p["node"], p["vmid"])
    subdirs = ["config", "pending", "status", "vncproxy", "termproxy", "vncwebsocket",
               "spiceproxy", "migrate", "clone", "rrd", "rrddata", "firewall", "snapshot",
               "resize", "interfaces"]  # fmt: skip
    return [{"subdir": s} for s in subdirs]


def lxc_status_index(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    sim.container_on(p["node"], p["vmid"])
    return [{"subdir": s} for s in ("current", "start", "stop", "shutdown", "reboot")]


def lxc_status(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    ct = sim.container_on(p["node"], p["vmid"])
    entry = sim.container_stats(ct)
    entry["vmid"] = ct.vmid  # an int here since 2021, even where the list had strings
    entry["ha"] = {"managed": 0}
    return entry


def config_digest(ct: Container) -> str:
    text = "".join(f"{k}: {v}\n" for k, v in sorted(ct.config.items()))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def lxc_config(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    ct = sim.container_on(p["node"], p["vmid"])
    if p.get("snapshot"):
        snap = ct.snapshots.get(p["snapshot"])
        if snap is None:
            raise fail(f"snapshot '{p['snapshot']}' does not exist")
        return dict(snap)
    out = dict(ct.config)
    if "description" in out:
        out["description"] = description_as_read(str(out["description"]))
    out["digest"] = config_digest(ct)
    return out


def _eui64_link_local(mac: str) -> str:
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 255, 254, *octets[3:]]
    suffix = int.from_bytes(bytes(eui), "big")
    return str(ipaddress.IPv6Address((0xFE80 << 112) | suffix))


def _interface(name: str, mac: str, inet: str | None, inet6: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "hwaddr": mac, "hardware-address": mac}
    addresses = []
    if inet:
        item["inet"] = inet
        ip, prefix = inet.split("/")
        addresses.append({"ip-address-type": "inet", "ip-address": ip, "prefix": int(prefix)})
    if inet6:
        item["inet6"] = inet6
        ip, prefix = inet6.split("/")
        addresses.append({"ip-address-type": "inet6", "ip-address": ip, "prefix": int(prefix)})
    item["ip-addresses"] = addresses
    return item


def interfaces(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    ct = sim.container_on(p["node"], p["vmid"])
    if not ct.running:
        return None  # no pid, so get_interfaces returns nothing: {"data": null}
    items = [_interface("lo", "00:00:00:00:00:00", "127.0.0.1/8", "::1/128")]
    nets = sorted(k for k in ct.config if re.fullmatch(r"net\d+", k))
    for i, key in enumerate(nets):
        net = parse_property_string(str(ct.config[key]))
        mac = net.get("hwaddr", "").lower()
        inet = None
        if i == 0 and ct.ip:
            inet = f"{ct.ip}/8"  # both 127.0.0.0/8 and 10.0.0.0/8
        elif "/" in net.get("ip", ""):
            inet = net["ip"]
        items.append(_interface(net.get("name", key), mac, inet, f"{_eui64_link_local(mac)}/64"))
    return items


def feature(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    ct = sim.container_on(p["node"], p["vmid"])
    # thin storage clones only base (template) volumes, or snapshots
    has = ct.is_template or bool(p.get("snapname")) if p["feature"] == "clone" else True
    return {"hasFeature": int(has)}


def _task_for(sim: Simulator, token: Token, p: dict[str, Any]) -> Task:
    upid = p["upid"]
    if not _UPID_RE.match(upid):
        raise param_error({"upid": "unable to parse worker upid"})
    task = sim.tasks.get(upid)
    if task is None or task.node != p["node"]:
        raise param_error({"upid": "no such task"})
    owner = task.user == token.tokenid
    if not owner and not token.has(f"/nodes/{task.node}", "Sys.Audit"):
        raise PveError(403, f"Permission check failed (/nodes/{task.node}, Sys.Audit)")
    return task


def task_status(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    task = _task_for(sim, token, p)
    user, _, tokenid = task.user.partition("!")
    out: dict[str, Any] = {
        "upid": task.upid,
        "node": task.node,
        "pid": task.pid,
        "pstart": task.pstart,
        "starttime": task.starttime,
        "type": task.type,
        "id": task.id,
        "user": user,
        "status": task.status,
    }
    if tokenid:
        out["tokenid"] = tokenid
    if task.status == "stopped":
        out["exitstatus"] = task.exitstatus
    return out


def task_log(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    task = _task_for(sim, token, p)
    lines = task.log or ["no content"]
    start = p.get("start", 0)
    limit = p.get("limit", 50)
    chosen = lines[start:] if limit == 0 else lines[start : start + limit]
    data = [{"n": start + i + 1, "t": text} for i, text in enumerate(chosen)]
    return Reply(data, {"total": len(lines)})
