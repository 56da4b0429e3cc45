"""One pinned SSH connection per node, shared by consoles and app commands.

Opening an SSH connection costs a key exchange and an authentication (tens of
milliseconds, and a login in the node's auth log); a console or a `systemctl show` needs
only a channel. `SshPool` keeps one connection per target (host, port, user, pinned host
key, client key) and opens a channel on it per command or PTY session; a connection that
closed is replaced at the next use. The host key is pinned exactly as in
`run_in_container`: nothing is sent to a host that shows another key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .client import ExecResult, _exit_status, _text, pct_exec_command
from .errors import HostKeyMismatch, SshAuthError, SshConnectError, SshTimeout

if TYPE_CHECKING:
    import asyncssh

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
# The SSH receive window of a PTY channel: what the node may send before we read it.
# Small, so a console whose browser is slow holds little in memory (backpressure).
PTY_WINDOW = 64 * 1024


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to log in; `known_host_key` is the pinned OpenSSH public key."""

    host: str
    port: int
    username: str
    private_key_pem: str
    known_host_key: str

    @property
    def key(self) -> tuple[str, int, str, str, str]:
        digest = hashlib.sha256(self.private_key_pem.encode()).hexdigest()
        return (self.host, self.port, self.username, self.known_host_key, digest)


class SshPool:
    def __init__(self, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self._connect_timeout = connect_timeout
        self._conns: dict[tuple[str, int, str, str, str], asyncssh.SSHClientConnection] = {}
        self._locks: dict[tuple[str, int, str, str, str], asyncio.Lock] = {}
        self._closed = False

    async def connection(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        """The open connection to `target`, connecting (once, under a lock) when needed."""
        if self._closed:
            raise SshConnectError("the SSH pool is closed")
        key = target.key
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self._conns.get(key)
            if conn is not None and not conn.is_closed():
                return conn
            conn = await _connect(target, self._connect_timeout)
            self._conns[key] = conn
            return conn

    async def exec(
        self, target: SshTarget, vmid: int, command: str, *, timeout: float
    ) -> ExecResult:
        """`pct exec <vmid> -- sh -c <command>` on a channel of the node's connection."""
        import asyncssh  # on the first SSH use, not at start-up (pinned.py)

        try:
            async with asyncio.timeout(timeout):
                conn = await self.connection(target)
                result = await conn.run(pct_exec_command(vmid, command), check=False)
        except TimeoutError as exc:
            raise SshTimeout(
                f"ssh {target.host}:{target.port}: no result in {timeout:g} s"
            ) from exc
        except (OSError, asyncssh.Error) as exc:
            raise SshConnectError(f"ssh {target.host}:{target.port}: {exc}") from exc
        return ExecResult(_exit_status(result), _text(result.stdout), _text(result.stderr))

    async def open_pty(
        self, target: SshTarget, command: str, *, cols: int, rows: int
    ) -> asyncssh.SSHClientProcess[bytes]:
        """A process with a PTY (bytes in and out) running `command` on the node."""
        import asyncssh  # on first use (pinned.py)

        try:
            async with asyncio.timeout(self._connect_timeout):
                conn = await self.connection(target)
                process: asyncssh.SSHClientProcess[bytes] = await conn.create_process(
                    command,
                    term_type="xterm-256color",
                    term_size=(cols, rows),
                    encoding=None,
                    window=PTY_WINDOW,
                )
        except TimeoutError as exc:
            raise SshTimeout(f"ssh {target.host}:{target.port}: no session in time") from exc
        except (OSError, asyncssh.Error) as exc:
            raise SshConnectError(f"ssh {target.host}:{target.port}: {exc}") from exc
        return process

    async def close(self) -> None:
        self._closed = True
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()


async def _connect(target: SshTarget, timeout: float) -> asyncssh.SSHClientConnection:
    import asyncssh  # on first use (pinned.py)

    from .pinned import PinnedHostClient

    try:
        client_key = asyncssh.import_private_key(target.private_key_pem)
        pinned = asyncssh.import_public_key(target.known_host_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"bad SSH key: {exc}") from exc
    client = PinnedHostClient()
    where = f"{target.host}:{target.port}"
    try:
        async with asyncio.timeout(timeout):
            conn, _ = await asyncssh.create_connection(
                lambda: client,
                target.host,
                target.port,
                username=target.username,
                client_keys=[client_key],
                known_hosts=([pinned], [], []),
                server_host_key_algs=[pinned.get_algorithm()],
                agent_path=None,
                config=[],
                preferred_auth="publickey",
                x509_trusted_certs=None,
                keepalive_interval=30,
            )
    except TimeoutError as exc:
        raise SshTimeout(f"ssh {where}: no connection within {timeout:g} s") from exc
    except asyncssh.HostKeyNotVerifiable as exc:
        offered = client.offered.get_fingerprint("sha256") if client.offered else "unknown"
        raise HostKeyMismatch(
            f"SSH host key of {where} does not match the pinned key "
            f"(expected {pinned.get_fingerprint('sha256')}, got {offered}); nothing was sent"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise SshAuthError(f"ssh {target.username}@{where}: key refused") from exc
    except (OSError, asyncssh.Error) as exc:
        raise SshConnectError(f"ssh {where}: {exc}") from exc
    return conn
