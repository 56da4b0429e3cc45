"""Run a command inside a container: ``pct exec <vmid> -- sh -c '<command>'`` over SSH.

The SSH server is a Proxmox node. Its host key is pinned: the caller passes the one
public key it expects (OpenSSH format), and any other key ends the connection before
authentication (``HostKeyMismatch``). No ``~/.ssh`` file, agent or config is consulted, so
the behaviour does not depend on the machine the control plane runs on.
"""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import HostKeyMismatch, SshAuthError, SshConnectError, SshTimeout

if TYPE_CHECKING:
    import asyncssh


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


def pct_exec_command(vmid: int, command: str) -> str:
    """The node-side command line; the container command is one shell-quoted argument."""
    return f"pct exec {int(vmid)} -- sh -c {shlex.quote(command)}"


async def run_in_container(
    *,
    host: str,
    port: int,
    username: str,
    private_key_pem: str,
    known_host_key: str,
    vmid: int,
    command: str,
    timeout: float,
) -> ExecResult:
    """Run ``command`` with ``sh -c`` in container ``vmid`` on the node at ``host:port``."""
    import asyncssh  # on the first SSH use, not at start-up (pinned.py)

    from .pinned import PinnedHostClient

    try:
        client_key = asyncssh.import_private_key(private_key_pem)
        pinned = asyncssh.import_public_key(known_host_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"bad SSH key: {exc}") from exc
    client = PinnedHostClient()
    try:
        async with asyncio.timeout(timeout):
            async with asyncssh.connect(
                host,
                port,
                username=username,
                client_factory=lambda: client,
                client_keys=[client_key],
                known_hosts=([pinned], [], []),
                server_host_key_algs=[pinned.get_algorithm()],
                agent_path=None,
                config=[],
                preferred_auth="publickey",
                x509_trusted_certs=None,
            ) as conn:
                result = await conn.run(pct_exec_command(vmid, command), check=False)
    except TimeoutError as exc:
        raise SshTimeout(f"ssh {host}:{port}: no result within {timeout:g} s") from exc
    except asyncssh.HostKeyNotVerifiable as exc:
        offered = client.offered.get_fingerprint("sha256") if client.offered else "unknown"
        raise HostKeyMismatch(
            f"SSH host key of {host}:{port} does not match the pinned key "
            f"(expected {pinned.get_fingerprint('sha256')}, got {offered}); nothing was sent"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise SshAuthError(f"ssh {username}@{host}:{port}: key refused") from exc
    except (OSError, asyncssh.Error) as exc:
        raise SshConnectError(f"ssh {host}:{port}: {exc}") from exc
    return ExecResult(_exit_status(result), _text(result.stdout), _text(result.stderr))


def _exit_status(result: asyncssh.SSHCompletedProcess) -> int:
    if result.exit_status is None:  # killed by a signal
        return 128 + 9 if result.exit_signal else 255
    return result.exit_status


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
