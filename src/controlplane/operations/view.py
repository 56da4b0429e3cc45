"""What a tenant's owner sees of an operation: no task ids, a reason word for a failure."""

from __future__ import annotations

from typing import Any

# The error classes (as the worker records them: "<step>: <Class>: <text>") that mean the
# node did not answer; anything else is the operation's own failure.
_UNAVAILABLE = ("ProxmoxUnavailableError", "ConnectError", "ConnectTimeout", "ReadTimeout",
                "TimeoutError", "NodeUnavailable", "Unavailable")  # fmt: skip


def error_reason(op: dict[str, Any]) -> str | None:
    if op.get("status") != "failed":
        return None
    error = str(op.get("error") or "")
    if any(f": {name}:" in error for name in _UNAVAILABLE):
        return "node_unavailable"
    return f"{op['kind']}_failed"


def user_operation(op: dict[str, Any]) -> dict[str, Any]:
    public = {key: op[key] for key in (
        "id", "tenant_id", "kind", "status", "params", "step", "created_at", "started_at",
        "finished_at")}  # fmt: skip
    return {**public, "error_reason": error_reason(op)}
