"""Client behaviour that needs exact control of the wire: httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx
import pytest

from controlplane.proxmox import (
    ProxmoxAuthError,
    ProxmoxClient,
    ProxmoxError,
    ProxmoxLockedError,
    ProxmoxParameterError,
    ProxmoxTaskError,
    ProxmoxUnavailableError,
    is_transient,
    parse_upid,
    task_succeeded,
)
from controlplane.proxmox.forms import encode_params

UPID = "UPID:pve2:0031B740:0645340C:6720A1B2:vzstart:101:root@pam!cp:"

Handler = Callable[[httpx.Request], httpx.Response]


def reply(status: int, reason: str, body: object = None, *, empty: bool = False) -> httpx.Response:
    content = b"" if empty else json.dumps(body if body is not None else {"data": None}).encode()
    return httpx.Response(status, content=content, extensions={"reason_phrase": reason.encode()})


def client_for(handler: Handler) -> ProxmoxClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ProxmoxClient(
        http,
        base_url="https://pve.example:8006/",
        token_id="root@pam!cp",
        token_secret="s3cret",
        poll_interval=0.001,
        max_poll_interval=0.002,
    )


async def test_request_shape_and_envelope() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(200, "OK", {"data": {"version": "8.4.1"}})

    client = client_for(handler)
    assert await client.version() == {"version": "8.4.1"}
    request = seen[0]
    assert str(request.url) == "https://pve.example:8006/api2/json/version"
    assert request.headers["authorization"] == "PVEAPIToken=root@pam!cp=s3cret"
    assert "s3cret" not in repr(client)


async def test_form_values_are_fully_percent_encoded() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return reply(200, "OK", {"data": None})

    client = client_for(handler)
    await client.set_config(
        "pve", 100, net0="name=eth0,bridge=vmbr0", tags=["a", "b"], description="x=1;y", onboot=True
    )
    body = bodies[0].decode()
    assert body.count("=") == body.count("&") + 1  # only the '=' of each pair is raw
    assert ";" not in body
    assert dict(parse_qsl(body)) == {
        "net0": "name=eth0,bridge=vmbr0",
        "tags": "a;b",
        "description": "x=1;y",
        "onboot": "1",
    }
    assert encode_params({"a": None, "b": False, "delete": ["x", "y"]}) == "b=0&delete=x%2Cy"


@pytest.mark.parametrize(
    ("status", "reason", "body", "kind", "message"),
    [
        (401, "invalid token value!", None, ProxmoxAuthError, "invalid token value!"),
        (500, "CT is locked (disk)", {"data": None}, ProxmoxLockedError, "CT is locked (disk)"),
        (
            500,
            "CT is locked (backup)",
            {"data": None, "message": "CT is locked (backup)\n"},
            ProxmoxLockedError,
            "CT is locked (backup)",
        ),
        (
            500,
            "can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout",
            None,
            ProxmoxLockedError,
            "can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout",
        ),
        (596, "Connection timed out", None, ProxmoxUnavailableError, "Connection timed out"),
        (599, "Too many redirections", None, ProxmoxUnavailableError, "Too many redirections"),
        (501, "Method 'GET /nope' not implemented", None, ProxmoxError, None),
    ],
)
async def test_error_mapping(
    status: int, reason: str, body: object, kind: type[ProxmoxError], message: str | None
) -> None:
    client = client_for(lambda _r: reply(status, reason, body, empty=body is None))
    with pytest.raises(kind) as err:
        await client.nodes()
    assert type(err.value) is kind
    assert err.value.status == status
    assert err.value.message == (message or reason)


async def test_body_message_is_preferred_over_the_first_line() -> None:
    body = {"data": None, "message": "clone failed: first\nsecond line\n"}
    client = client_for(lambda _r: reply(500, "clone failed: first", body))
    with pytest.raises(ProxmoxError) as err:
        await client.nodes()
    assert err.value.message == "clone failed: first\nsecond line"
    assert not is_transient(err.value)


async def test_parameter_errors_from_recorded_fixture(
    recorded_response: Callable[[str], str],
) -> None:
    body = json.loads(recorded_response("get-cluster-nextid.400-vmid-exists.json"))
    client = client_for(lambda _r: reply(400, "Parameter verification failed.", body))
    with pytest.raises(ProxmoxParameterError) as err:
        await client.next_id(218)
    assert err.value.errors == {"vmid": "VM 218 already exists"}
    assert "vmid: VM 218 already exists" in str(err.value)


async def test_get_is_retried_once_after_a_dropped_connection() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return reply(200, "OK", {"data": "101"})

    assert await client_for(handler).next_id() == 101
    assert calls == 2


@pytest.mark.parametrize("method", ["clone", "delete", "set_config"])
async def test_writes_are_never_retried(method: str) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    client = client_for(handler)
    call = {
        "clone": lambda: client.clone("pve", 9000, 101),
        "delete": lambda: client.delete("pve", 101),
        "set_config": lambda: client.set_config("pve", 101, memory=512),
    }[method]
    with pytest.raises(ProxmoxUnavailableError):
        await call()
    assert calls == 1


async def test_timeout_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProxmoxUnavailableError) as err:
        await client_for(handler).nodes()
    assert is_transient(err.value)


async def test_lenient_parsing_of_recorded_fixtures(
    recorded_response: Callable[[str], str],
) -> None:
    routes = {
        "/api2/json/nodes/node1/lxc": "get-nodes-node-lxc.pve7.json",
        "/api2/json/nodes/node1/lxc/506/status/current": (
            "get-nodes-node-lxc-vmid-status-current.legacy-pve6.json"
        ),
        "/api2/json/nodes/node1/lxc/106/interfaces": "get-nodes-node-lxc-vmid-interfaces.pve8.1.json",
        "/api2/json/cluster/resources": "get-cluster-resources.pve8.json",
        "/api2/json/nodes": "get-nodes.pve7.4.json",
        "/api2/json/nodes/node1/status": "get-nodes-node-status.pve7.4.json",
        "/api2/json/nodes/node1/lxc/200/clone": "post-nodes-node-lxc-vmid-clone.json",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return reply(200, "OK", json.loads(recorded_response(routes[request.url.path])))

    client = client_for(handler)
    cts = await client.list_containers("node1")
    assert [c["vmid"] for c in cts] == [106, 105, 101]
    assert [c.get("template", 0) for c in cts] == [0, 0, 1]
    legacy = await client.container_status("node1", 506)
    assert (legacy["vmid"], legacy["pid"], legacy["disk"]) == (506, 114348, 2843205632)
    assert "lock" not in legacy
    assert legacy["template"] == 0
    interfaces = await client.interfaces("node1", 106)
    assert interfaces is not None
    assert interfaces[1]["inet"] == "192.168.3.95/22"
    resources = await client.cluster_resources(None)
    assert {r["type"] for r in resources} == {"lxc", "qemu", "node", "storage", "sdn"}
    assert len(await client.nodes()) == 4
    assert (await client.node_status("node1"))["memory"]["total"] == 65919459328
    upid = await client.clone("node1", 200, 109)
    assert parse_upid(upid).user == "root@pam!api_token"
    assert parse_upid(upid).token_id == "api_token"


async def test_nextid_string_and_config_fixture(recorded_response: Callable[[str], str]) -> None:
    config = json.loads(recorded_response("get-nodes-node-lxc-vmid-config.pve9.2.data.json"))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/config"):
            return reply(200, "OK", {"data": config})
        return reply(200, "OK", {"data": "100"})

    client = client_for(handler)
    assert await client.next_id() == 100
    assert (await client.get_config("pve", 9902))["net0"].startswith("name=eth0")


async def test_wait_task_polls_the_node_in_the_upid(
    recorded_response: Callable[[str], str],
) -> None:
    polled: list[str] = []
    states = iter(["running", "running", "stopped"])

    def handler(request: httpx.Request) -> httpx.Response:
        polled.append(request.url.path)
        state = next(states)
        data = {"upid": UPID, "node": "pve2", "status": state, "pid": 1, "type": "vzstart"}
        if state == "stopped":
            data["exitstatus"] = "WARNINGS: 2"
        return reply(200, "OK", {"data": data})

    status = await client_for(handler).wait_task(UPID, timeout=5)
    assert status["exitstatus"] == "WARNINGS: 2"
    assert len(polled) == 3
    assert all(p.startswith("/api2/json/nodes/pve2/tasks/UPID:pve2:") for p in polled)

    recorded = json.loads(recorded_response("get-nodes-node-tasks-upid-status.warnings.json"))
    upid = recorded["data"]["upid"]
    done = await client_for(lambda _r: reply(200, "OK", recorded)).wait_task(upid, timeout=1)
    assert done["exitstatus"] == "WARNINGS: 1"


async def test_wait_task_failure_reads_the_log_tail() -> None:
    log_requests: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            data = {
                "upid": UPID,
                "status": "stopped",
                "exitstatus": "startup for container '101' failed",
            }
            return reply(200, "OK", {"data": data})
        params = dict(request.url.params)
        log_requests.append(params)
        start = int(params["start"])
        lines = [{"n": n, "t": f"line {n}"} for n in range(start + 1, min(start + 50, 120) + 1)]
        return reply(200, "OK", {"data": lines, "total": 120})

    with pytest.raises(ProxmoxTaskError) as err:
        await client_for(handler).wait_task(UPID, timeout=1)
    assert err.value.exitstatus == "startup for container '101' failed"
    assert err.value.log[-1] == "line 120"
    assert len(err.value.log) == 50
    assert log_requests[-1] == {"start": "70", "limit": "50"}
    assert not is_transient(err.value)


async def test_wait_task_retries_transient_status_errors() -> None:
    answers = iter(
        [
            reply(596, "Connection timed out", empty=True),
            reply(200, "OK", {"data": {"status": "stopped", "exitstatus": "OK"}}),
        ]
    )
    status = await client_for(lambda _r: next(answers)).wait_task(UPID, timeout=5)
    assert status["exitstatus"] == "OK"


def test_upid_parsing() -> None:
    upid = parse_upid("UPID:pve:000CFC5C:103E8D0C3:6194806C:aptupdate::root@pam:")
    assert (upid.node, upid.pid, upid.pstart, upid.id, upid.user) == (
        "pve",
        0xCFC5C,
        0x103E8D0C3,
        "",
        "root@pam",
    )
    assert upid.starttime == 0x6194806C
    assert str(upid) == "UPID:pve:000CFC5C:103E8D0C3:6194806C:aptupdate::root@pam:"
    for bad in ("UPID:pve:1:2:3:vzstart:100:root@pam:", UPID[:-1], "", "OK"):
        with pytest.raises(ValueError, match="not a Proxmox UPID"):
            parse_upid(bad)


@pytest.mark.parametrize(
    ("exitstatus", "ok"),
    [("OK", True), ("WARNINGS: 1", True), ("WARNINGS: 12", True), ("WARNINGS:", False),
     ("CT is locked (disk)", False), (None, False), ("", False), ("ok", False)],
)  # fmt: skip
def test_task_success_rule(exitstatus: str | None, ok: bool) -> None:
    assert task_succeeded(exitstatus) is ok


async def test_non_json_and_missing_envelope() -> None:
    client = client_for(lambda _r: httpx.Response(200, content=b"<html>"))
    with pytest.raises(ProxmoxError, match="not JSON"):
        await client.nodes()
    client = client_for(lambda _r: httpx.Response(200, json={"nodata": 1}))
    with pytest.raises(ProxmoxError, match="no 'data' envelope"):
        await client.nodes()
    client = client_for(lambda _r: reply(200, "OK", {"data": None}))
    with pytest.raises(ProxmoxError, match="expected a task UPID"):
        await client.start("pve", 100)
