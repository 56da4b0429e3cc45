"""The simulator's error: what a PVE handler ``die``s with, plus how it goes on the wire."""

from __future__ import annotations

import httpx


class PveError(Exception):
    """An API error as Proxmox sends it.

    ``message`` is the text without its trailing newline: the status line carries its first
    line, the JSON body (PVE >= 8.3) carries it with ``\\n``. ``body=False`` is for errors
    raised before a handler runs (401, unknown path), which Proxmox sends with no body.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: dict[str, str] | None = None,
        body: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message.rstrip("\n")
        self.errors = errors
        self.body = body


def fail(message: str) -> PveError:
    """A handler ``die "text\\n"``: HTTP 500 with the text as reason phrase."""
    return PveError(500, message)


def param_error(errors: dict[str, str]) -> PveError:
    """``raise_param_exc``: 400 with one message per parameter."""
    return PveError(400, "Parameter verification failed.", errors=errors)


def config_missing(node: str, vmid: int | str) -> PveError:
    return fail(f"Configuration file 'nodes/{node}/lxc/{vmid}.conf' does not exist")


def locked(lock: str) -> PveError:
    return fail(f"CT is locked ({lock})")


class ConnectionDropped(httpx.RemoteProtocolError):
    """Raised by the fault layer: the server closes the connection without an answer.

    ``HttpServer`` turns it into an aborted connection. In-process, it is what a client
    would see on a socket (an ``httpx.RemoteProtocolError``), even through a plain
    ``httpx.ASGITransport``.
    """

    def __init__(self) -> None:
        super().__init__("Server disconnected without sending a response.")
