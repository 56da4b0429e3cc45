"""Commands inside containers: ``pct exec`` on the Proxmox node, over SSH (asyncssh)."""

from .client import ExecResult, pct_exec_command, run_in_container
from .errors import HostKeyMismatch, SshAuthError, SshConnectError, SshError, SshTimeout
from .keys import KeyPair, fingerprint, generate_keypair
from .pool import SshPool, SshTarget

__all__ = [
    "ExecResult",
    "HostKeyMismatch",
    "KeyPair",
    "SshAuthError",
    "SshConnectError",
    "SshError",
    "SshPool",
    "SshTarget",
    "SshTimeout",
    "fingerprint",
    "generate_keypair",
    "pct_exec_command",
    "run_in_container",
]
