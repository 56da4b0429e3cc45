"""What an end user sees of a tenant: fixed words instead of internal detail.

Operators see the node, the VMID, the last error with its exception text and the raw
health (`unknown: ProxmoxUnavailableError: GET /nodes/pve1/...`). Users see
`error_reason` and `health` from the fixed vocabularies below, mapped from the step that
failed and the kind of error, never a node name, VMID, address or exception text.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from controlplane.config import Settings
from controlplane.sso.service import tenant_host

ErrorReason = Literal[
    "no_capacity",  # no node had room when the step needed one
    "node_unavailable",  # the node did not answer
    "template_missing",  # the project's template is not on the node
    "provisioning_failed",  # creating or starting the container failed
    "bootstrap_failed",  # the project's bootstrap commands failed
    "route_failed",  # the public route could not be set up
    "suspend_failed",
    "resume_failed",
    "delete_failed",
    "internal",  # anything else
]
UserHealth = Literal[
    "ok",
    "container_stopped",
    "container_missing",
    "app_unreachable",
    "app_error",
    "address_changed",
    "unknown",
]
_HEALTH_WORDS = frozenset(get_args(UserHealth))
_FAILED_OPERATION: dict[str, ErrorReason] = {
    "suspending": "suspend_failed",
    "resuming": "resume_failed",
    "deleting": "delete_failed",
}
_STEP: dict[str, ErrorReason] = {
    "clone": "provisioning_failed",
    "configure": "provisioning_failed",
    "start": "provisioning_failed",
    "address": "provisioning_failed",
    "bootstrap": "bootstrap_failed",
    "route": "route_failed",
}
# Error classes (as the worker records them: "<step>: <Class>: <text>") that say why.
_UNAVAILABLE = ("ProxmoxUnavailableError", "ConnectError", "ConnectTimeout", "ReadTimeout",
                "TimeoutError", "NodeUnavailable", "Unavailable")  # fmt: skip


def error_reason(row: dict[str, Any]) -> ErrorReason | None:
    """The reason a tenant in `error` is there, from a fixed vocabulary; None otherwise."""
    if row.get("status") != "error":
        return None
    error = row.get("last_error") or ""
    kind = error.split(": ", 2)[1] if error.count(": ") >= 1 else ""
    if kind in _UNAVAILABLE:
        return "node_unavailable"
    if "capacity" in error.lower() or kind == "NoCapacity":
        return "no_capacity"
    step = row.get("error_step") or ""
    if step == "clone" and kind == "ProxmoxNotFoundError":
        return "template_missing"
    failed = row.get("failed_status") or "provisioning"
    if failed in _FAILED_OPERATION:
        return _FAILED_OPERATION[failed]
    return _STEP.get(step, "internal")


def user_health(health: str | None) -> UserHealth | None:
    """The poller's health in words a user may see: `app_http_502` is `app_error`,
    `unknown: <exception>` is `unknown`."""
    if health is None:
        return None
    if health in _HEALTH_WORDS:
        return health  # type: ignore[return-value]
    if health.startswith("app_http_"):
        return "app_error"
    if health.startswith("app_unreachable"):
        return "app_unreachable"
    if health.startswith("address"):
        return "address_changed"
    return "unknown"


def user_tenant(row: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A tenant row (or an event's snapshot of one) as `UserTenantPublic`'s fields."""
    return {
        **row,
        "url": f"https://{tenant_host(settings, row['subdomain'])}/",
        "health": user_health(row.get("health")),
        "error_reason": error_reason(row),
        "step_started_at": row.get("step_started_at"),
    }
