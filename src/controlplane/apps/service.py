"""App management: the rules, and the commands run inside the container.

Every command goes through `pct exec <vmid> -- sh -c '...'` on a channel of the node's
pinned SSH connection (`sshexec.SshPool`), with `APP_COMMAND_TIMEOUT_S`. Unit names and
arguments are shell-quoted; a project's actions are the operator's commands, run as
written. Restarts and actions are rows of `app_runs` (one running per tenant, a unique
index: a second is a 409), written before the command starts and finished by a
compare-and-swap on `status = 'running'`; a run left `running` by a crash is marked
failed at the next run. Output is kept as bounded tails, and audited never.
"""

from __future__ import annotations

import shlex
import uuid
from datetime import datetime
from typing import Any

from controlplane.apps.schemas import MAX_LOG_BYTES, MAX_LOG_LINES, MAX_OUTPUT
from controlplane.audit.context import AuditContext
from controlplane.db import ConstraintViolation, load_queries
from controlplane.errors import Conflict, Invalid, NotFound, Unreachable
from controlplane.nodes.service import get_node, ssh_target_of
from controlplane.sshexec import ExecResult, SshError, SshPool, SshTarget, SshTimeout
from controlplane.state import Services

_Q = load_queries("controlplane.apps")

SHOW_PROPERTIES = "Id,LoadState,ActiveState,SubState,MainPID,NRestarts,ActiveEnterTimestamp,Result"


def _pool(state: Services) -> SshPool:
    assert state.ssh is not None, "every process serving the API has an SSH pool"
    return state.ssh


async def app_tenant(
    state: Services, tenant_id: uuid.UUID, user_id: uuid.UUID | None
) -> dict[str, Any]:
    """The tenant and its project's app; it must be `active` (409) and, with a user, theirs
    (404)."""
    row = await state.db.fetch_one(_Q["app_tenant"], {"tenant_id": tenant_id, "user_id": user_id})
    if row is None:
        raise NotFound(f"tenant {tenant_id} not found")
    if row["status"] != "active":
        raise Conflict(f"tenant {tenant_id} is {row['status']}, not active")
    return row


async def _target(state: Services, tenant: dict[str, Any]) -> SshTarget:
    node = await get_node(state.db, tenant["node_id"]) if tenant["node_id"] else None
    target = ssh_target_of(state.sealer, node) if node else None
    if target is None or tenant["vmid"] is None:
        raise Conflict("the tenant's node has no SSH access configured (key and host key)")
    return target


def _service_of(tenant: dict[str, Any]) -> str:
    if not tenant["app_service"]:
        raise Conflict("the tenant's project declares no app_service")
    return str(tenant["app_service"])


async def _exec(state: Services, tenant: dict[str, Any], command: str) -> ExecResult:
    target = await _target(state, tenant)
    try:
        return await _pool(state).exec(
            target, tenant["vmid"], command, timeout=state.settings.app_command_timeout_s
        )
    except SshTimeout:
        raise
    except SshError as exc:
        raise Unreachable(f"the node could not be reached over SSH: {exc}") from exc


def parse_show(text: str) -> dict[str, Any] | None:
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if "ActiveState" not in values:
        return None

    def number(key: str) -> int | None:
        value = values.get(key, "")
        return int(value) if value.isdigit() else None

    return {
        "load_state": values.get("LoadState", ""),
        "active_state": values["ActiveState"],
        "sub_state": values.get("SubState", ""),
        "main_pid": number("MainPID") or None,
        "restarts": number("NRestarts"),
        "active_since": values.get("ActiveEnterTimestamp") or None,
        "result": values.get("Result") or None,
    }


async def _state_of(state: Services, tenant: dict[str, Any], service: str) -> dict[str, Any]:
    command = f"systemctl show --no-pager --property={SHOW_PROPERTIES} {shlex.quote(service)}"
    try:
        result = await _exec(state, tenant, command)
    except SshTimeout as exc:
        raise Unreachable(f"systemctl show did not answer: {exc}") from exc
    parsed = parse_show(result.stdout) if result.ok else None
    if parsed is None:
        raise Unreachable(
            f"systemctl show failed (exit {result.exit_status}): {result.stderr.strip()[:300]}"
        )
    return parsed


def _actions(tenant: dict[str, Any]) -> list[dict[str, Any]]:
    return list(tenant["app_actions"] or [])


async def app_status(
    state: Services, tenant_id: uuid.UUID, user_id: uuid.UUID | None
) -> dict[str, Any]:
    tenant = await app_tenant(state, tenant_id, user_id)
    service = tenant["app_service"]
    return {
        "service": service,
        "state": await _state_of(state, tenant, service) if service else None,
        "health": {"health": tenant["health"], "observed_at": tenant["observed_at"]},
        "actions": [
            {"name": a["name"], "confirm": a.get("confirm", False)} for a in _actions(tenant)
        ],
        "runs": await recent_runs(state, tenant_id),
    }


async def recent_runs(
    state: Services, tenant_id: uuid.UUID, limit: int = 10
) -> list[dict[str, Any]]:
    return await state.db.fetch_all(_Q["runs_recent"], {"tenant_id": tenant_id, "limit": limit})


async def app_logs(
    state: Services,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    *,
    lines: int,
    since: datetime | None,
) -> dict[str, Any]:
    """The unit's last `lines` journal lines (at most MAX_LOG_LINES), since `since`."""
    tenant = await app_tenant(state, tenant_id, user_id)
    service = _service_of(tenant)
    command = f"journalctl --no-pager -o short-iso -u {shlex.quote(service)} -n {int(lines)}" + (
        f" --since=@{int(since.timestamp())}" if since is not None else ""
    )
    try:
        result = await _exec(state, tenant, command)
    except SshTimeout as exc:
        raise Unreachable(f"journalctl did not answer: {exc}") from exc
    if not result.ok:
        raise Unreachable(
            f"journalctl failed (exit {result.exit_status}): {result.stderr.strip()[:300]}"
        )
    text = result.stdout
    truncated = len(text.encode()) > MAX_LOG_BYTES
    if truncated:  # keep the newest lines
        text = text.encode()[-MAX_LOG_BYTES:].decode("utf-8", "ignore").split("\n", 1)[-1]
    out = [line for line in text.splitlines() if line != "-- No entries --"]
    if len(out) > MAX_LOG_LINES:
        out, truncated = out[-MAX_LOG_LINES:], True
    return {"service": service, "lines": out, "truncated": truncated}


async def _run(
    state: Services,
    audit: AuditContext,
    tenant: dict[str, Any],
    *,
    kind: str,
    name: str,
    command: str,
) -> dict[str, Any]:
    """Record the run, run it, record how it ended; audited with its exit status only."""
    tenant_id = tenant["id"]
    target = await _target(state, tenant)  # 409 before any row when the node has no SSH
    stale_after = state.settings.app_command_timeout_s + 60
    try:
        async with state.db.transaction() as tx:
            await tx.execute(
                _Q["runs_fail_stale"], {"tenant_id": tenant_id, "stale_after": stale_after}
            )
            run = await tx.fetch_one(
                _Q["run_insert"],
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant_id,
                    "kind": kind,
                    "name": name,
                    "command": command,
                    "actor": audit.actor,
                },
            )
    except ConstraintViolation as exc:
        if exc.constraint == "app_runs_one_running":
            raise Conflict("a restart or action is already running on this tenant") from None
        raise
    assert run is not None
    outcome: dict[str, Any] = {"exit_status": None, "stdout": "", "stderr": "", "error": None}
    failure: Unreachable | None = None
    try:
        result = await _pool(state).exec(
            target, tenant["vmid"], command, timeout=state.settings.app_command_timeout_s
        )
    except SshTimeout:
        status = "timeout"
        outcome["error"] = f"no result within {state.settings.app_command_timeout_s:g} s"
    except SshError as exc:
        status = "failed"
        outcome["error"] = str(exc)[:1000]
        failure = Unreachable(f"the node could not be reached over SSH: {exc}")
    else:
        status = "done" if result.ok else "failed"
        outcome.update(
            exit_status=result.exit_status,
            stdout=_tail(result.stdout),
            stderr=_tail(result.stderr),
        )
    finished = await state.db.fetch_one(
        _Q["run_finish"], {"id": run["id"], "status": status, **outcome}
    )
    audit.record(
        f"app.{kind}",
        "tenant",
        tenant_id,
        {
            "run_id": str(run["id"]),
            "name": name,
            "status": status,
            "exit_status": outcome["exit_status"],
        },
    )
    if failure is not None:
        raise failure
    return finished or run


def _tail(text: str) -> str:
    data = text.encode()
    return text if len(data) <= MAX_OUTPUT else data[-MAX_OUTPUT:].decode("utf-8", "ignore")


async def restart_app(
    state: Services, audit: AuditContext, tenant_id: uuid.UUID, user_id: uuid.UUID | None
) -> dict[str, Any]:
    tenant = await app_tenant(state, tenant_id, user_id)
    service = _service_of(tenant)
    return await _run(
        state,
        audit,
        tenant,
        kind="restart",
        name=service,
        command=f"systemctl restart {shlex.quote(service)}",
    )


async def run_action(
    state: Services,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None,
    name: str,
    *,
    confirmed: bool,
) -> dict[str, Any]:
    tenant = await app_tenant(state, tenant_id, user_id)
    action = next((a for a in _actions(tenant) if a["name"] == name), None)
    if action is None:
        raise NotFound(f"the tenant's project has no action {name!r}", field="name")
    if action.get("confirm") and not confirmed:
        raise Invalid(
            f'action {name!r} asks for confirmation: send {{"confirm": true}}', field="confirm"
        )
    return await _run(state, audit, tenant, kind="action", name=name, command=action["command"])
