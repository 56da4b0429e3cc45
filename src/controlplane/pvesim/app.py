"""``create_app(sim)``: the simulator's ASGI app.

``/api2/...`` is the Proxmox API (``api.PveApi``) behind the fault layer (latency, 5xx
answers, dropped connections). ``/_sim/...`` is simulator-only and unauthenticated (the
simulator listens on loopback by default): ``GET /_sim/state``, ``GET``/``PUT
/_sim/faults``, ``POST /_sim/locks`` (a stuck lock), ``PUT /_sim/containers/{vmid}/app``
(the port of a container's loopback app) and ``PUT /_sim/nodes/{node}`` (``{"online": false}``
takes a node off the network).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .api import PveApi, pve_response
from .errors import ConnectionDropped
from .faults import REASONS
from .simulator import Simulator

ASGIApp = Any


def _sim_routes(sim: Simulator) -> Starlette:
    async def state(request: Request) -> JSONResponse:
        return JSONResponse(sim.state())

    async def faults(request: Request) -> JSONResponse:
        if request.method == "PUT":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("send a JSON object of fault settings")
                sim.faults.update(changes)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(sim.faults.as_dict())

    async def locks(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            vmid, lock, seconds = int(body["vmid"]), str(body["lock"]), float(body["seconds"])
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"need vmid, lock, seconds: {exc}"}, status_code=400)
        if vmid not in sim.containers:
            return JSONResponse({"error": f"no container {vmid}"}, status_code=404)
        sim.stick_lock(vmid, lock, seconds)
        return JSONResponse({"vmid": vmid, "lock": lock, "seconds": seconds})

    async def app_port(request: Request) -> JSONResponse:
        vmid = request.path_params["vmid"]
        try:
            port = int((await request.json())["port"])
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"need port: {exc}"}, status_code=400)
        if vmid not in sim.containers:
            return JSONResponse({"error": f"no container {vmid}"}, status_code=404)
        sim.set_app_port(vmid, port)
        return JSONResponse({"vmid": vmid, "port": port})

    async def node_online(request: Request) -> JSONResponse:
        node = request.path_params["node"]
        try:
            online = (await request.json())["online"]
            if not isinstance(online, bool):
                raise TypeError("online must be true or false")
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"need online: {exc}"}, status_code=400)
        if node not in sim.nodes:
            return JSONResponse({"error": f"no node {node}"}, status_code=404)
        sim.set_node_online(node, online)
        return JSONResponse({"node": node, "online": online})

    return Starlette(
        routes=[
            Route("/_sim/nodes/{node}", node_online, methods=["PUT"]),
            Route("/_sim/state", state),
            Route("/_sim/faults", faults, methods=["GET", "PUT"]),
            Route("/_sim/locks", locks, methods=["POST"]),
            Route("/_sim/containers/{vmid:int}/app", app_port, methods=["PUT"]),
        ]
    )


async def _swallow(message: dict[str, Any]) -> None:
    """A ``send`` for an answer that is lost with its connection."""


def create_app(sim: Simulator) -> ASGIApp:
    api = PveApi(sim)
    sim_app = _sim_routes(sim)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # nothing to set up: state lives in ``sim``
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/_sim/"):
            await sim_app(scope, receive, send)
            return
        faults = sim.faults
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        if sim.draw(faults.drop_rate):
            raise ConnectionDropped
        if sim.draw(faults.http_5xx_rate):
            status = faults.http_5xx_status
            await pve_response(status, REASONS[status], None)(scope, receive, send)
            return
        if sim.draw(faults.drop_after_rate):
            await api(scope, receive, _swallow)  # the work is done, the answer is lost
            raise ConnectionDropped
        await api(scope, receive, send)

    return app
