"""The ``/api2/json`` endpoints and the order PVE handles a request in.

For every request, as pve-http-server and pve-manager's HTTPServer do: authenticate (401,
empty body), find the handler (501 ``Method 'GET /x' not implemented``), check the
permission (403, before validation and before any existence check), forward to the node
(an unknown node fails the name lookup), validate parameters (400 with per-field
``errors``), run the handler (500 with the message as reason phrase).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import actions, backups, lifecycle, rrd, snapshots, views
from .auth import Token, authenticate
from .errors import PveError
from .forms import extract_params
from .params import (
    BOOL,
    CLONE,
    CONFIG_PUT,
    CREATE,
    CT_RRDDATA,
    MIGRATE,
    NODE,
    NODE_RRDDATA,
    NODE_VMID,
    NODE_VMID_SNAP,
    NONNEG,
    OPT_VMID,
    RESIZE,
    SNAPSHOT_CREATE,
    SNAPSHOT_DELETE,
    SNAPSHOT_ROLLBACK,
    STORAGE_CONTENT,
    STORAGE_INDEX,
    UPID,
    VOLUME_DELETE,
    VZDUMP,
    Param,
    validate,
)
from .server import REASON_HEADER
from .simulator import Simulator

Handler = Callable[[Simulator, Token, dict[str, Any]], Any]
PermCheck = Callable[[Token, Mapping[str, Any]], None]
_FORMAT = re.compile(r"^/api2/(?P<format>json|extjs|html)(?P<rel>/.*)?$")
_PATH_PARAM = re.compile(r"\{(\w+)\}")
_JSON_HEADERS = {
    "content-type": "application/json;charset=UTF-8",
    "server": "pve-api-daemon/3.0",
    "cache-control": "max-age=0",
    "pragma": "no-cache",
}


def perm(path: str, *privs: str, any_of: bool = False) -> PermCheck:
    """``["perm", path, [privs]]`` from the schema; ``{vmid}`` etc. come from the request."""

    def check(token: Token, params: Mapping[str, Any]) -> None:
        token.check(
            _PATH_PARAM.sub(lambda m: str(params.get(m[1], "")), path), privs, any_of=any_of
        )

    return check


def _clone_perm(token: Token, params: Mapping[str, Any]) -> None:
    token.check(f"/vms/{params.get('vmid', '')}", ["VM.Clone"])
    pool = params.get("pool")
    if pool is not None:
        # the simulator has no pools, and PVE reports a missing pool as a permission error
        raise PveError(403, f"Permission check failed (pool '{pool}' does not exist)")
    token.check(f"/vms/{params.get('newid', '')}", ["VM.Allocate"])


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    params: Mapping[str, Param]
    check: PermCheck | None = None
    # `proxyto: node` in the schema: pveproxy forwards the call to the named node, and a
    # name that is not a cluster member fails that hop. The few that are not proxied run on
    # whichever node was asked, so their `{node}` is never looked up (reference §1, §18).
    proxied: bool = True

    @property
    def regex(self) -> re.Pattern[str]:
        # a volume id has a '/' in it (local:backup/vzdump-...): PVE takes the rest of the path
        return re.compile(
            "^"
            + _PATH_PARAM.sub(
                lambda m: f"(?P<{m[1]}>{'.+' if m[1] == 'volume' else '[^/]+'})", self.path
            )
            + "$"
        )


_CT = "/nodes/{node}/lxc/{vmid}"
_VM_AUDIT = perm("/vms/{vmid}", "VM.Audit")
_POWER = perm("/vms/{vmid}", "VM.PowerMgmt")
_CONFIG_PRIVS = (
    "VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network",
    "VM.Config.Options",
)  # fmt: skip

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/version", views.version, {}),
    Endpoint("GET", "/nodes", views.nodes, {}),
    Endpoint(
        "GET", "/nodes/{node}/status", views.node_status, {"node": NODE},
        perm("/nodes/{node}", "Sys.Audit"),
    ),
    Endpoint(
        "GET", "/cluster/resources", views.cluster_resources,
        {"type": Param(enum=("vm", "storage", "node", "sdn"))},
    ),
    Endpoint("GET", "/cluster/nextid", views.nextid, {"vmid": OPT_VMID}),
    Endpoint("GET", "/nodes/{node}/lxc", views.lxc_list, {"node": NODE}),
    Endpoint("GET", _CT, views.lxc_index, NODE_VMID),
    Endpoint("GET", f"{_CT}/status", views.lxc_status_index, NODE_VMID),
    Endpoint("GET", f"{_CT}/status/current", views.lxc_status, NODE_VMID, _VM_AUDIT),
    Endpoint(
        "GET", f"{_CT}/config", views.lxc_config,
        {**NODE_VMID, "current": BOOL, "snapshot": Param(format="pve-configid", max_length=40)},
        _VM_AUDIT,
    ),
    Endpoint(
        "PUT", f"{_CT}/config", actions.set_config, CONFIG_PUT,
        perm("/vms/{vmid}", *_CONFIG_PRIVS, any_of=True),
    ),
    Endpoint("POST", f"{_CT}/clone", actions.clone, CLONE, _clone_perm),
    Endpoint(
        "POST", f"{_CT}/status/start", actions.start,
        {**NODE_VMID, "skiplock": BOOL, "debug": BOOL}, _POWER,
    ),
    Endpoint(
        "POST", f"{_CT}/status/stop", actions.stop,
        {**NODE_VMID, "skiplock": BOOL, "overrule-shutdown": BOOL}, _POWER,
    ),
    Endpoint(
        "POST", f"{_CT}/status/shutdown", actions.shutdown,
        {**NODE_VMID, "timeout": NONNEG, "forceStop": BOOL}, _POWER,
    ),
    Endpoint(
        "POST", f"{_CT}/status/reboot", actions.reboot, {**NODE_VMID, "timeout": NONNEG}, _POWER
    ),
    Endpoint(
        "DELETE", _CT, actions.delete,
        {**NODE_VMID, "purge": BOOL, "force": BOOL, "destroy-unreferenced-disks": BOOL},
        perm("/vms/{vmid}", "VM.Allocate"),
    ),
    Endpoint(
        "POST", f"{_CT}/template", actions.template, NODE_VMID, perm("/vms/{vmid}", "VM.Allocate")
    ),
    Endpoint("GET", f"{_CT}/interfaces", views.interfaces, NODE_VMID, _VM_AUDIT),
    Endpoint(
        "GET", f"{_CT}/feature", views.feature,
        {
            **NODE_VMID,
            "feature": Param(enum=("snapshot", "clone", "copy"), optional=False),
            "snapname": Param(format="pve-configid", max_length=40),
        },
        _VM_AUDIT,
    ),
    Endpoint(
        "GET", "/nodes/{node}/tasks/{upid}/status", views.task_status,
        {"node": NODE, "upid": UPID},
    ),
    Endpoint(
        "GET", "/nodes/{node}/tasks/{upid}/log", views.task_log,
        {"node": NODE, "upid": UPID, "start": NONNEG, "limit": NONNEG, "download": BOOL},
    ),
)  # fmt: skip

_SNAP = f"{_CT}/snapshot"
_VM_SNAPSHOT = perm("/vms/{vmid}", "VM.Snapshot")
SNAPSHOT_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", _SNAP, snapshots.list_snapshots, NODE_VMID, _VM_AUDIT),
    Endpoint("POST", _SNAP, snapshots.create_snapshot, SNAPSHOT_CREATE, _VM_SNAPSHOT),
    Endpoint("GET", f"{_SNAP}/{{snapname}}", snapshots.snapshot_index, NODE_VMID_SNAP,
             proxied=False),
    Endpoint(
        "DELETE", f"{_SNAP}/{{snapname}}", snapshots.delete_snapshot, SNAPSHOT_DELETE,
        _VM_SNAPSHOT,
    ),
    Endpoint(
        "POST", f"{_SNAP}/{{snapname}}/rollback", snapshots.rollback, SNAPSHOT_ROLLBACK,
        perm("/vms/{vmid}", "VM.Snapshot", "VM.Snapshot.Rollback", any_of=True),
    ),
    Endpoint(
        "GET", f"{_SNAP}/{{snapname}}/config", snapshots.snapshot_config, NODE_VMID_SNAP,
        perm("/vms/{vmid}", "VM.Snapshot", "VM.Snapshot.Rollback", "VM.Audit", any_of=True),
    ),
)  # fmt: skip

_STORAGE = "/nodes/{node}/storage"
BACKUP_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/nodes/{node}/vzdump", backups.vzdump, VZDUMP),
    Endpoint("POST", "/nodes/{node}/lxc", backups.create, CREATE),
    Endpoint("GET", _STORAGE, backups.storage_index, STORAGE_INDEX),
    Endpoint(
        "GET", f"{_STORAGE}/{{storage}}/content", backups.storage_content, STORAGE_CONTENT,
        perm("/storage/{storage}", "Datastore.Audit", "Datastore.AllocateSpace", any_of=True),
    ),
    Endpoint(
        "DELETE", f"{_STORAGE}/{{storage}}/content/{{volume}}", backups.delete_volume,
        VOLUME_DELETE,
    ),
)  # fmt: skip

LIFECYCLE_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "PUT", f"{_CT}/resize", lifecycle.resize, RESIZE,
        perm("/vms/{vmid}", "VM.Config.Disk", any_of=True),
    ),
    Endpoint(
        "POST", f"{_CT}/migrate", lifecycle.migrate, MIGRATE, perm("/vms/{vmid}", "VM.Migrate")
    ),
)  # fmt: skip

RRD_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET", f"{_CT}/rrddata", rrd.container_rrddata, CT_RRDDATA, _VM_AUDIT, proxied=False
    ),
    Endpoint(
        "GET", "/nodes/{node}/rrddata", rrd.node_rrddata, NODE_RRDDATA,
        perm("/nodes/{node}", "Sys.Audit"), proxied=False,
    ),
)  # fmt: skip

ENDPOINTS = ENDPOINTS + SNAPSHOT_ENDPOINTS + BACKUP_ENDPOINTS + LIFECYCLE_ENDPOINTS + RRD_ENDPOINTS


def find(method: str, rel: str) -> tuple[Endpoint, dict[str, str]] | None:
    for endpoint in ENDPOINTS:
        if endpoint.method == method and (m := endpoint.regex.match(rel)):
            return endpoint, m.groupdict()
    return None


def pve_response(status: int, reason: str, envelope: dict[str, Any] | None) -> Response:
    """A response as pveproxy writes it; ``envelope=None`` gives an empty body."""
    headers = {REASON_HEADER.decode(): reason.encode("utf-8").decode("latin-1")}
    if envelope is None:
        headers["server"] = _JSON_HEADERS["server"]
        return Response(b"", status_code=status, headers=headers)
    body = json.dumps(envelope, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers={**_JSON_HEADERS, **headers})


def error_response(err: PveError, message_in_body: bool) -> Response:
    reason = err.message.split("\n", 1)[0]
    if not err.body:
        return pve_response(err.status, reason, None)
    envelope: dict[str, Any] = {"data": None}
    if err.errors:
        envelope["errors"] = err.errors
    if message_in_body:
        envelope["message"] = err.message + "\n"
    return pve_response(err.status, reason, envelope)


class PveApi:
    """The ASGI app for ``/api2/...``."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        try:
            data = await self.handle(request)
        except PveError as err:
            if err.status == 401 and self.sim.auth_failure_delay > 0:
                await asyncio.sleep(self.sim.auth_failure_delay)
            response = error_response(err, self.sim.message_in_body)
        else:
            envelope = {"data": data.data, **data.extra} if isinstance(data, views.Reply) else {
                "data": data
            }  # fmt: skip
            response = pve_response(200, "OK", envelope)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Any:
        method = request.method
        m = _FORMAT.match(request.url.path)
        if not m or m["format"] != "json":
            raise PveError(501, "no such uri", body=False)
        rel = m["rel"] or "/"
        token = authenticate(request.headers.get("authorization"), self.sim.tokens)
        found = find(method, rel)
        if found is None:
            raise PveError(501, f"Method '{method} {rel}' not implemented", body=False)
        endpoint, path_params = found
        body = await request.body()
        try:
            params = extract_params(
                method, request.url.query, body, request.headers.get("content-type", "")
            )
        except ValueError as exc:
            raise PveError(400, f"unable to parse request body - {exc}") from exc
        params.update(path_params)
        if endpoint.check is not None:
            endpoint.check(token, params)
        node = path_params.get("node")
        if node is not None and endpoint.proxied and node not in self.sim.nodes:
            raise PveError(
                500,
                f"hostname lookup '{node}' failed - failed to get address info for: {node}: "
                "Name or service not known",
            )
        validated = validate(endpoint.params, params)
        return endpoint.handler(self.sim, token, validated)
