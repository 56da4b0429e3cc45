"""A simulated Proxmox VE cluster: an ASGI app with the real API's paths, errors and tasks.

The names below load on first use (PEP 562): the CLI registers `controlplane pve-sim`, so
every `serve` and `worker` process imports this package, and they should not pay for the
simulator (about 3 MB and 50 ms) that they never run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .auth import DEFAULT_TOKEN_ID, DEFAULT_TOKEN_SECRET, Token
    from .errors import ConnectionDropped, PveError
    from .faults import Faults
    from .server import HttpServer
    from .simulator import Simulator
    from .transport import SimTransport

_WHERE = {
    "DEFAULT_TOKEN_ID": ".auth",
    "DEFAULT_TOKEN_SECRET": ".auth",
    "ConnectionDropped": ".errors",
    "Faults": ".faults",
    "HttpServer": ".server",
    "PveError": ".errors",
    "SimTransport": ".transport",
    "Simulator": ".simulator",
    "Token": ".auth",
    "create_app": ".app",
}

__all__ = [
    "DEFAULT_TOKEN_ID",
    "DEFAULT_TOKEN_SECRET",
    "ConnectionDropped",
    "Faults",
    "HttpServer",
    "PveError",
    "SimTransport",
    "Simulator",
    "Token",
    "create_app",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value
