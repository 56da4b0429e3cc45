"""Errors of running commands in containers over SSH.

    SshError
     +-- HostKeyMismatch     the server's host key is not the pinned one (nothing was sent)
     +-- SshAuthError        our key was refused
     +-- SshConnectError     no connection, or it broke
     +-- SshTimeout          the whole call took longer than its timeout (also TimeoutError)

A command that runs and fails is not an error here: it is an ``ExecResult`` with a non-zero
``exit_status`` (255 with a message on stderr when ``pct`` itself refused).
"""

from __future__ import annotations


class SshError(Exception):
    """Base class of the SSH exec errors."""


class HostKeyMismatch(SshError):
    """The server presented a host key other than the pinned one."""


class SshAuthError(SshError):
    """The server did not accept our private key for that user."""


class SshConnectError(SshError):
    """The TCP connection or the SSH session could not be set up or broke."""


class SshTimeout(SshError, TimeoutError):
    """Connecting and running the command took longer than the timeout."""
