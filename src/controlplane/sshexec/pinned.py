"""The asyncssh client that accepts only the pinned host key.

asyncssh (with the parts of cryptography it pulls in) is about 8 MB of memory and a tenth
of a second of start-up, and most control planes never open an SSH connection (it is only
for nodes with SSH configured). So nothing imported at start-up imports asyncssh: the
functions that connect import it, and this module, on their first call.
"""

from __future__ import annotations

import asyncssh


class PinnedHostClient(asyncssh.SSHClient):
    """Remembers the host key the server offered, to name it when it is refused."""

    def __init__(self) -> None:
        self.offered: asyncssh.SSHKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        return False  # only the pinned key (given as known_hosts) is accepted
