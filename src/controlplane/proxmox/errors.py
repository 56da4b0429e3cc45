"""Typed exceptions for what Proxmox VE said, and how to tell them apart.

Proxmox puts its error text in the HTTP *reason phrase* (``500 CT is locked (disk)``);
PVE >= 8.3 also repeats it in the JSON body as ``message``. Parameter errors (400) carry
an ``errors`` object mapping each parameter to its problem. Most handler errors are a
plain 500, so the subclasses below are chosen from the message text (see
``docs/proxmox-reference.md`` section 3.4 for the exact strings).

    ProxmoxError                      status, message, errors
     +-- ProxmoxAuthError             401 (the body is empty: the text is the reason phrase)
     +-- ProxmoxPermissionError       403 Permission check failed (/vms/100, VM.PowerMgmt)
     +-- ProxmoxParameterError        400 Parameter verification failed. (.errors per field)
     +-- ProxmoxLockedError           500 CT is locked (disk)  (.lock) / can't lock file
     +-- ProxmoxNotFoundError         500 Configuration file '...' does not exist
     +-- ProxmoxAlreadyExistsError    500 CT 101 already exists on node 'pve'
     +-- ProxmoxAlreadyRunningError   500 CT 100 already running
     +-- ProxmoxNotRunningError       500 CT 100 not running / VM 100 not running
     +-- ProxmoxUnavailableError      502/503/504/595/596/599, timeouts, resets, cfs-lock
     +-- ProxmoxTLSError              fingerprint mismatch or certificate verification failed
     +-- ProxmoxTaskError             a task ended with an error (upid, exitstatus, log)
          +-- ProxmoxTaskTimeoutError the task did not finish within the caller's deadline
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

# Status codes that mean "the API could not answer now", not "the API said no".
# 595/596/599 are AnyEvent::HTTP pseudo-statuses from pveproxy's node-to-node hop.
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504, 595, 596, 597, 598, 599})

_LOCKED = re.compile(r"^CT is locked \((?P<lock>[^)]*)\)")
_FLOCK_TIMEOUT = re.compile(r"can't lock file '[^']*' - got timeout")
_NOT_FOUND = re.compile(r"^Configuration file '[^']*' does not exist")
_ALREADY_EXISTS = re.compile(r"\b(?:CT|VM) \d+ already exists on node\b")
_ALREADY_RUNNING = re.compile(r"^(?:CT|VM) \d+ already running")
_NOT_RUNNING = re.compile(r"^(?:CT|VM) \d+ not running")
_CFS_LOCK = re.compile(r"cfs-lock '[^']*' error: got lock request timeout")


class ProxmoxError(Exception):
    """Base class: ``status`` (HTTP code or None), ``message`` and per-field ``errors``."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.errors: dict[str, str] = dict(errors or {})
        super().__init__(message)

    def __str__(self) -> str:
        head = f"{self.status} {self.message}" if self.status is not None else self.message
        if self.errors:
            fields = "; ".join(f"{k}: {v.strip()}" for k, v in sorted(self.errors.items()))
            return f"{head} ({fields})"
        return head


class ProxmoxAuthError(ProxmoxError):
    """401: the token is missing, unknown, expired or its secret is wrong."""


class ProxmoxPermissionError(ProxmoxError):
    """403: the token lacks a privilege (privilege-separated tokens start with none)."""


class ProxmoxParameterError(ProxmoxError):
    """400: parameter verification failed; ``errors`` maps each parameter to its problem."""


class ProxmoxLockedError(ProxmoxError):
    """The container has a config lock (``.lock``, e.g. ``disk``) or its flock timed out."""

    def __init__(self, message: str, *, lock: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.lock = lock


class ProxmoxNotFoundError(ProxmoxError):
    """The container's config does not exist on that node."""


class ProxmoxAlreadyExistsError(ProxmoxError):
    """The VMID is already taken somewhere in the cluster."""


class ProxmoxAlreadyRunningError(ProxmoxError):
    """Start of a container that is already running."""


class ProxmoxNotRunningError(ProxmoxError):
    """Stop, shutdown or reboot of a container that is not running."""


class ProxmoxUnavailableError(ProxmoxError):
    """The API could not answer now: 5xx proxy statuses, timeouts, dropped connections."""


class ProxmoxTLSError(ProxmoxError):
    """The server's certificate did not match the pinned fingerprint or failed verification.

    ``presented``: the SHA-256 fingerprint the server showed instead of the pinned one."""

    def __init__(self, message: str, *, presented: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.presented = presented


class ProxmoxTaskError(ProxmoxError):
    """A task finished with an exit status other than ``OK`` or ``WARNINGS: n``."""

    def __init__(
        self,
        message: str,
        *,
        upid: str,
        exitstatus: str | None,
        log: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.upid = upid
        self.exitstatus = exitstatus
        self.log: list[str] = list(log or [])

    def __str__(self) -> str:
        tail = " | ".join(self.log[-5:])
        return f"{self.message} (task {self.upid})" + (f": {tail}" if tail else "")


class ProxmoxTaskTimeoutError(ProxmoxTaskError, TimeoutError):
    """The task was still running when the caller's deadline passed (it keeps running)."""


def _classify_500(message: str, status: int, errors: dict[str, str]) -> ProxmoxError:
    if m := _LOCKED.match(message):
        return ProxmoxLockedError(message, lock=m.group("lock"), status=status, errors=errors)
    if _FLOCK_TIMEOUT.search(message):
        return ProxmoxLockedError(message, lock=None, status=status, errors=errors)
    if _NOT_FOUND.match(message):
        return ProxmoxNotFoundError(message, status=status, errors=errors)
    if _ALREADY_EXISTS.search(message):
        return ProxmoxAlreadyExistsError(message, status=status, errors=errors)
    if _ALREADY_RUNNING.match(message):
        return ProxmoxAlreadyRunningError(message, status=status, errors=errors)
    if _NOT_RUNNING.match(message):
        return ProxmoxNotRunningError(message, status=status, errors=errors)
    if _CFS_LOCK.search(message):
        return ProxmoxUnavailableError(message, status=status, errors=errors)
    return ProxmoxError(message, status=status, errors=errors)


def _decode_body(content: bytes) -> dict[str, Any]:
    if not content:
        return {}
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def error_from_response(response: httpx.Response) -> ProxmoxError:
    """Build the typed exception for a non-200 answer.

    The body ``message`` (PVE >= 8.3) is preferred because the reason phrase holds only the
    first line; older versions and every 401 have no body, so the reason phrase is used.
    """
    status = response.status_code
    body = _decode_body(response.content)
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        message = response.reason_phrase or httpx.codes.get_reason_phrase(status)
    message = message.rstrip("\n")
    raw_errors = body.get("errors")
    errors = {str(k): str(v) for k, v in raw_errors.items()} if isinstance(raw_errors, dict) else {}
    if status == 401:
        return ProxmoxAuthError(message, status=status, errors=errors)
    if status == 403:
        return ProxmoxPermissionError(message, status=status, errors=errors)
    if status == 400:
        return ProxmoxParameterError(message, status=status, errors=errors)
    if status in _UNAVAILABLE_STATUSES:
        return ProxmoxUnavailableError(message, status=status, errors=errors)
    if status == 500:
        return _classify_500(message, status, errors)
    return ProxmoxError(message, status=status, errors=errors)


def is_transient(exc: BaseException) -> bool:
    """True when repeating the same call later may succeed.

    Unavailable answers, config locks (including a task that failed on one) and timeouts are
    transient; a parameter error, a missing container or a permission problem is not.
    """
    if isinstance(exc, ProxmoxTaskTimeoutError):
        return True
    if isinstance(exc, ProxmoxTaskError):
        status = exc.exitstatus or ""
        return bool(
            _LOCKED.match(status) or _FLOCK_TIMEOUT.search(status) or _CFS_LOCK.search(status)
        )
    if isinstance(exc, ProxmoxUnavailableError | ProxmoxLockedError):
        return True
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | TimeoutError)
