"""Async Proxmox VE API client: tokens, TLS pinning, typed errors, tasks."""

from .client import CallObserver, ProxmoxClient
from .errors import (
    ProxmoxAlreadyExistsError,
    ProxmoxAlreadyRunningError,
    ProxmoxAuthError,
    ProxmoxError,
    ProxmoxLockedError,
    ProxmoxNotFoundError,
    ProxmoxNotRunningError,
    ProxmoxParameterError,
    ProxmoxPermissionError,
    ProxmoxTaskError,
    ProxmoxTaskTimeoutError,
    ProxmoxTLSError,
    ProxmoxUnavailableError,
    is_transient,
)
from .tls import make_http_client, normalize_fingerprint
from .upid import Upid, parse_upid, task_succeeded

__all__ = [
    "CallObserver",
    "ProxmoxAlreadyExistsError",
    "ProxmoxAlreadyRunningError",
    "ProxmoxAuthError",
    "ProxmoxClient",
    "ProxmoxError",
    "ProxmoxLockedError",
    "ProxmoxNotFoundError",
    "ProxmoxNotRunningError",
    "ProxmoxParameterError",
    "ProxmoxPermissionError",
    "ProxmoxTLSError",
    "ProxmoxTaskError",
    "ProxmoxTaskTimeoutError",
    "ProxmoxUnavailableError",
    "Upid",
    "is_transient",
    "make_http_client",
    "normalize_fingerprint",
    "parse_upid",
    "task_succeeded",
]
