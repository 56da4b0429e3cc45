"""A simulated Proxmox VE cluster: an ASGI app with the real API's paths, errors and tasks."""

from .app import create_app
from .auth import Token
from .errors import ConnectionDropped, PveError
from .faults import Faults
from .server import HttpServer
from .simulator import DEFAULT_TOKEN_ID, DEFAULT_TOKEN_SECRET, Simulator
from .transport import SimTransport

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
