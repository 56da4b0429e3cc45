"""The simulator against docs/proxmox-reference.md section 12, the fidelity checklist, point by point."""

from __future__ import annotations

import json
import re
import time

import httpx

from controlplane.pvesim import SimTransport, Simulator, create_app
from tests.reference import PVE_FIXTURES

from .conftest import AUDITOR, NOBODY, ROOT, finish_tasks, new_sim, wait_for

UPID_RE = re.compile(
    r"^UPID:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:"
    r"[^:\s/]+:[^:\s/]*:[^:\s/]+:$"
)
JSON_TYPE = "application/json;charset=UTF-8"


async def clone(api: httpx.AsyncClient, sim: Simulator, newid: int, **extra: str) -> str:
    response = await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": str(newid), **extra})
    assert response.status_code == 200, response.reason_phrase
    await finish_tasks(sim)
    return str(response.json()["data"])


# 1. status line carries the message; JSON error bodies; empty 401 bodies


async def test_error_reason_phrase_and_body(api: httpx.AsyncClient, sim: Simulator) -> None:
    sim.containers[9000].config["lock"] = "disk"
    response = await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": "200"})
    assert (response.status_code, response.reason_phrase) == (500, "CT is locked (disk)")
    assert response.headers["content-type"] == JSON_TYPE
    assert response.headers["server"] == "pve-api-daemon/3.0"
    assert response.json() == {"data": None, "message": "CT is locked (disk)\n"}
    assert "x-pvesim-reason" not in response.headers


async def test_pre_83_error_body_has_no_message() -> None:
    sim = new_sim(message_in_body=False)
    sim.containers[9000].config["lock"] = "disk"
    transport = SimTransport(create_app(sim))
    async with httpx.AsyncClient(transport=transport, base_url="https://s/api2/json") as raw:
        response = await raw.post("/nodes/pve1/lxc/9000/clone", data={"newid": 200}, headers=ROOT)
    recorded = PVE_FIXTURES / "post-nodes-node-lxc-vmid-clone.500-ct-locked.http"
    status_line, *_rest = recorded.read_text().splitlines()
    assert f"HTTP/1.1 {response.status_code} {response.reason_phrase}" == status_line
    assert response.content == b'{"data":null}'  # byte for byte as recorded
    await sim.close()


async def test_401_has_an_empty_body(api: httpx.AsyncClient) -> None:
    cases = {
        None: "No ticket",
        "PVEAPIToken=root@pam!controlplane=wrong": "invalid token value!",
        "PVEAPIToken=root@pam!ghost=x": "no such token 'ghost' for user 'root@pam'",
        "PVEAPIToken=garbage": "invalid token value!",
    }
    for header, reason in cases.items():
        headers = {"Authorization": header} if header else {}
        request = api.build_request("GET", "/nodes", headers=headers)
        if header is None:
            del request.headers["Authorization"]
        response = await api.send(request)
        assert (response.status_code, response.reason_phrase) == (401, reason)
        assert response.content == b""
        assert "content-type" not in response.headers


async def test_401_delay_is_optional() -> None:
    sim = new_sim(auth_failure_delay=0.2)
    async with httpx.AsyncClient(transport=SimTransport(create_app(sim))) as raw:
        started = time.monotonic()
        response = await raw.get("https://s/api2/json/nodes")
    assert response.status_code == 401
    assert time.monotonic() - started >= 0.2
    await sim.close()


async def test_400_has_per_field_errors(api: httpx.AsyncClient) -> None:
    response = await api.get("/cluster/nextid", params={"vmid": "9000"})
    recorded = json.loads((PVE_FIXTURES / "get-cluster-nextid.400-vmid-exists.json").read_text())
    assert (response.status_code, response.reason_phrase) == (400, "Parameter verification failed.")
    body = response.json()
    assert body.pop("message") == "Parameter verification failed.\n"
    assert body == {**recorded, "errors": {"vmid": "VM 9000 already exists"}}
    response = await api.post(
        "/nodes/pve1/lxc/9000/clone", data={"newid": "abc", "hostname": "a_b", "bogus": "1"}
    )
    assert response.json()["errors"] == {
        "newid": "type check ('integer') failed - got 'abc'",
        "hostname": "invalid format - value does not look like a valid DNS name\n",
        "bogus": "property is not defined in schema and the schema does not allow additional "
        "properties",
    }
    response = await api.post("/nodes/pve1/lxc/9000/clone", data={})
    assert response.json()["errors"] == {"newid": "property is missing and it is not optional"}
    response = await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": "99"})
    assert response.json()["errors"] == {"newid": "value must have a minimum value of 100"}


# 2. 501 for unknown paths; permission before validation and existence; filtered lists


async def test_unknown_paths_are_501(api: httpx.AsyncClient) -> None:
    response = await api.get("/nodes/pve1/foo")
    assert (response.status_code, response.reason_phrase) == (
        501,
        "Method 'GET /nodes/pve1/foo' not implemented",
    )
    response = await api.delete("/version")
    assert response.reason_phrase == "Method 'DELETE /version' not implemented"
    response = await api.get("https://pve.sim:8006/api2/xml/version")
    assert (response.status_code, response.reason_phrase) == (501, "no such uri")


async def test_permission_comes_first(api: httpx.AsyncClient) -> None:
    for path in ("/nodes/pve1/lxc/9000/status/start", "/nodes/pve1/lxc/777/status/start",
                 "/nodes/pve1/lxc/abc/status/start"):  # fmt: skip
        response = await api.post(path, headers=AUDITOR)
        assert response.status_code == 403, path
        vmid = path.split("/")[4]
        assert response.reason_phrase == f"Permission check failed (/vms/{vmid}, VM.PowerMgmt)"
        assert response.json() == {
            "data": None,
            "message": f"Permission check failed (/vms/{vmid}, VM.PowerMgmt)\n",
        }
    response = await api.put("/nodes/pve1/lxc/9000/config", data={"memory": "1"}, headers=AUDITOR)
    assert response.reason_phrase == (
        "Permission check failed (/vms/9000, VM.Config.Disk|VM.Config.CPU|VM.Config.Memory|"
        "VM.Config.Network|VM.Config.Options)"
    )
    response = await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": "300", "pool": "x"})
    assert response.reason_phrase == "Permission check failed (pool 'x' does not exist)"


async def test_lists_filter_instead_of_403(api: httpx.AsyncClient) -> None:
    assert (await api.get("/nodes/pve1/lxc", headers=NOBODY)).json() == {"data": []}
    assert (await api.get("/cluster/resources", headers=NOBODY)).json() == {"data": []}
    assert len((await api.get("/nodes/pve1/lxc", headers=AUDITOR)).json()["data"]) == 1
    nodes = (await api.get("/nodes", headers=NOBODY)).json()["data"]
    assert next(sorted(n) for n in nodes) == ["id", "level", "node", "status", "type"]


async def test_unknown_node(api: httpx.AsyncClient) -> None:
    response = await api.get("/nodes/pve9/lxc")
    assert response.status_code == 500
    assert response.reason_phrase.startswith("hostname lookup 'pve9' failed")


# 3. the form-parsing bug


async def test_raw_equals_and_semicolon_are_cut(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    path = "/nodes/pve1/lxc/101/config"
    response = await api.put(path, content=b"net0=name=eth0,bridge=vmbr0", headers=form)
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "net0": "invalid format - value without key, but schema does not define a default key\n"
    }
    response = await api.put(path, content=b"tags=a;b", headers=form)
    assert response.json()["errors"] == {
        "b": "property is not defined in schema and the schema does not allow additional properties"
    }
    response = await api.put(path, content=b"description=owner=tenant-1", headers=form)
    assert response.status_code == 200  # silently cut, the worst case
    assert sim.containers[101].config["description"] == "owner"
    # percent-encoded, everything survives
    response = await api.put(
        path, content=b"description=owner%3Dtenant-1%3B%20x&tags=a%3Bb", headers=form
    )
    assert response.status_code == 200
    assert sim.containers[101].config["description"] == "owner=tenant-1; x"
    assert sim.containers[101].config["tags"] == "a;b"


async def test_json_bodies_and_query_override(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    response = await api.put(
        "/nodes/pve1/lxc/101/config", json={"memory": 1024, "onboot": True}, params={"memory": 2048}
    )
    assert response.status_code == 200
    assert (sim.containers[101].config["memory"], sim.containers[101].config["onboot"]) == (2048, 1)


# 4. nextid is a string


async def test_nextid_is_a_string(api: httpx.AsyncClient, sim: Simulator) -> None:
    response = await api.get("/cluster/nextid")
    assert response.content == b'{"data":"100"}'
    assert (await api.get("/cluster/nextid", params={"vmid": "555"})).json() == {"data": "555"}
    listing = (await api.get("/nodes/pve1/lxc")).json()["data"]
    assert listing[0]["vmid"] == 9000  # ints everywhere else (8.4)


async def test_legacy_vmid_strings() -> None:
    sim = new_sim(legacy_vmid_strings=True)
    assert sim.container_stats(sim.containers[9000])["vmid"] == "9000"
    await sim.close()


# 5. UPIDs and task status


async def test_upid_format_and_task_status(api: httpx.AsyncClient, sim: Simulator) -> None:
    response = await api.post("/nodes/pve2/lxc/9001/clone", data={"newid": "150"})
    upid = response.json()["data"]
    assert UPID_RE.match(upid)
    fields = upid.split(":")
    assert len(fields) == 9 and fields[-1] == ""
    assert (fields[1], fields[5], fields[6], fields[7]) == (
        "pve2",
        "vzclone",
        "9001",  # the source vmid, not newid
        "root@pam!controlplane",
    )
    status = (await api.get(f"/nodes/pve2/tasks/{upid}/status")).json()["data"]
    assert status["status"] == "running"
    assert "exitstatus" not in status
    assert (status["user"], status["tokenid"], status["id"]) == ("root@pam", "controlplane", "9001")
    assert status["pid"] == int(fields[2], 16)
    await finish_tasks(sim)
    status = (await api.get(f"/nodes/pve2/tasks/{upid}/status")).json()["data"]
    assert (status["status"], status["exitstatus"]) == ("stopped", "OK")
    # asking the wrong node, or with junk
    wrong = await api.get(f"/nodes/pve1/tasks/{upid}/status")
    assert wrong.json()["errors"] == {"upid": "no such task"}
    junk = await api.get("/nodes/pve1/tasks/UPID:nope/status")
    assert junk.json()["errors"] == {"upid": "unable to parse worker upid"}
    log = (await api.get(f"/nodes/pve2/tasks/{upid}/log", params={"limit": 0})).json()
    assert log["total"] == len(log["data"])
    assert log["data"][-1] == {"n": log["total"], "t": "TASK OK"}


async def test_tasks_of_other_users_need_sys_audit(api: httpx.AsyncClient, sim: Simulator) -> None:
    upid = (await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": "150"})).json()["data"]
    assert (await api.get(f"/nodes/pve1/tasks/{upid}/status", headers=AUDITOR)).status_code == 200
    denied = await api.get(f"/nodes/pve1/tasks/{upid}/status", headers=NOBODY)
    assert (denied.status_code, denied.reason_phrase) == (
        403,
        "Permission check failed (/nodes/pve1, Sys.Audit)",
    )
    await finish_tasks(sim)


# 6. clone locks, new id visible at once, new MAC


async def test_clone_locks(api: httpx.AsyncClient, sim: Simulator) -> None:
    response = await api.post(
        "/nodes/pve1/lxc/9000/clone", data={"newid": "120", "hostname": "web-1"}
    )
    assert response.status_code == 200
    source = (await api.get("/nodes/pve1/lxc/9000/status/current")).json()["data"]
    target = (await api.get("/nodes/pve1/lxc/120/config")).json()["data"]
    assert (source["lock"], target["lock"]) == ("disk", "create")
    assert (await api.get("/cluster/nextid")).json()["data"] == "100"
    assert (await api.get("/cluster/nextid", params={"vmid": 120})).status_code == 400
    second = await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": "121"})
    assert (second.status_code, second.reason_phrase) == (500, "CT is locked (disk)")
    taken = await api.post("/nodes/pve2/lxc/9001/clone", data={"newid": "120"})
    assert (taken.status_code, taken.reason_phrase) == (500, "CT 120 already exists on node 'pve1'")
    assert "lock" not in sim.containers[9001].config  # released again
    await finish_tasks(sim)
    config = (await api.get("/nodes/pve1/lxc/120/config")).json()["data"]
    assert "lock" not in config and "template" not in config
    assert config["hostname"] == "web-1"
    template_mac = sim.containers[9000].config["net0"].split("hwaddr=")[1][:17]
    new_mac = config["net0"].split("hwaddr=")[1][:17]
    assert new_mac.startswith("BC:24:11:") and new_mac != template_mac


async def test_clone_preconditions(api: httpx.AsyncClient, sim: Simulator) -> None:
    linked = await api.post(
        "/nodes/pve1/lxc/9000/clone", data={"newid": "130", "storage": "local-lvm"}
    )
    assert linked.reason_phrase == "parameter 'storage' not allowed for linked clones"
    remote = await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": "130", "target": "pve2"})
    assert remote.reason_phrase == "can't clone CT to node 'pve2' (CT uses local storage)"
    missing = await api.post("/nodes/pve2/lxc/9000/clone", data={"newid": "130"})
    assert missing.reason_phrase == "Configuration file 'nodes/pve2/lxc/9000.conf' does not exist"
    assert sim.state()["tasks"] == []


# 7. power actions: sync checks; locks show up inside the task


async def test_power_actions(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    base = "/nodes/pve1/lxc/101/status"
    stop = await api.post(f"{base}/stop")
    assert (stop.status_code, stop.reason_phrase) == (500, "CT 101 not running")
    assert (await api.post(f"{base}/shutdown")).reason_phrase == "CT 101 not running"
    assert (await api.post(f"{base}/reboot")).reason_phrase == "VM 101 not running"
    assert (await api.post(f"{base}/start")).status_code == 200
    await finish_tasks(sim)
    assert (await api.post(f"{base}/start")).reason_phrase == "CT 101 already running"
    sim.containers[101].config["lock"] = "backup"
    upid = (await api.post(f"{base}/stop")).json()["data"]
    await finish_tasks(sim)
    assert sim.tasks[upid].exitstatus == "CT is locked (backup)"
    skip = await api.post(f"{base}/stop", data={"skiplock": "1"}, headers=AUDITOR)
    assert skip.status_code == 403
    # start of a CT that does not exist: a UPID, and the task fails
    upid = (await api.post("/nodes/pve1/lxc/555/status/start")).json()["data"]
    await finish_tasks(sim)
    assert (
        sim.tasks[upid].exitstatus == "Configuration file 'nodes/pve1/lxc/555.conf' does not exist"
    )
    upid = (await api.post("/nodes/pve1/lxc/9000/status/start")).json()["data"]
    await finish_tasks(sim)
    assert sim.tasks[upid].exitstatus == "you can't start a CT if it's a template"


async def test_destroy_checks(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    await api.post("/nodes/pve1/lxc/101/status/start")
    await finish_tasks(sim)
    running = await api.delete("/nodes/pve1/lxc/101")
    assert running.reason_phrase == "unable to destroy CT 101 - container is running"
    sim.containers[101].config["protection"] = 1
    assert (await api.delete("/nodes/pve1/lxc/101", params={"force": 1})).reason_phrase == (
        "can't remove CT 101 - protection mode enabled"
    )
    sim.containers[101].config.pop("protection")
    upid = (await api.delete("/nodes/pve1/lxc/101", params={"force": 1})).json()["data"]
    assert sim.containers[101].lock == "destroyed"  # the vmid stays taken until the end
    await finish_tasks(sim)
    assert 101 not in sim.containers and sim.tasks[upid].type == "vzdestroy"


async def test_config_put_errors(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    path = "/nodes/pve1/lxc/101/config"
    assert (await api.put(path)).reason_phrase == "no options specified"
    stale = await api.put(path, data={"memory": "256", "digest": "0" * 40})
    assert stale.reason_phrase == (
        "detected modified configuration - file changed by other user? Try again."
    )
    digest = (await api.get(path)).json()["data"]["digest"]
    assert (await api.put(path, data={"memory": "256", "digest": digest})).status_code == 200
    assert (await api.put(path, data={"unprivileged": "0"})).reason_phrase == (
        "unable to modify read-only option: 'unprivileged'"
    )
    assert (await api.put(path, data={"delete": "description"})).status_code == 200
    assert "description" not in sim.containers[101].config


# 8. /cluster/resources lags; status/current is immediate


async def test_cluster_resources_lag() -> None:
    sim = new_sim(rrd_interval=30.0)
    transport = SimTransport(create_app(sim))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://s/api2/json", headers=ROOT
    ) as api:
        first = (await api.get("/cluster/resources", params={"type": "vm"})).json()["data"]
        assert {r["vmid"]: r["status"] for r in first} == {9000: "stopped", 9001: "stopped"}
        await clone(api, sim, 101)
        sim.containers[101].config["tags"] = "fresh"
        entries = (await api.get("/cluster/resources", params={"type": "vm"})).json()["data"]
        new = next(r for r in entries if r["vmid"] == 101)
        assert new["status"] == "unknown" and "name" not in new  # not in the RRD yet
        assert new["tags"] == "fresh"  # tags and lock come from the config: current
        current = (await api.get("/nodes/pve1/lxc/101/status/current")).json()["data"]
        assert current["status"] == "stopped"
    await sim.close()


# 9. config normalisation


async def test_config_normalisation(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    response = await api.put(
        "/nodes/pve1/lxc/101/config",
        data={
            "tags": "Web,prod;web beta",
            "net0": "bridge=vmbr0,ip=dhcp,name=eth0,firewall=1",
            "description": "line one\nline two\n\n",
        },
    )
    assert response.status_code == 200
    config = (await api.get("/nodes/pve1/lxc/101/config")).json()["data"]
    assert config["tags"] == "beta;prod;web"
    assert re.fullmatch(
        r"name=eth0,bridge=vmbr0,firewall=1,hwaddr=BC:24:11(:[0-9A-F]{2}){3},ip=dhcp,type=veth",
        config["net0"],
    )
    assert config["description"] == "line one\nline two\n"
    assert re.fullmatch(r"[0-9a-f]{40}", config["digest"])
    assert isinstance(config["memory"], int) and isinstance(config["unprivileged"], int)


# 10. interfaces of a stopped CT; 11. template conversion returns null


async def test_interfaces_of_a_stopped_ct(api: httpx.AsyncClient) -> None:
    response = await api.get("/nodes/pve1/lxc/9000/interfaces")
    assert response.content == b'{"data":null}'


async def test_template_conversion_is_async(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    response = await api.post("/nodes/pve1/lxc/101/template")
    assert response.content == b'{"data":null}'
    assert not sim.containers[101].is_template
    await finish_tasks(sim)
    assert (await api.get("/nodes/pve1/lxc/101/config")).json()["data"]["template"] == 1
    again = await api.post("/nodes/pve1/lxc/101/template")
    assert again.reason_phrase == "you can't convert a template to a template"


async def test_memory_accounting(api: httpx.AsyncClient, sim: Simulator) -> None:
    before = (await api.get("/nodes/pve1/status")).json()["data"]["memory"]
    await clone(api, sim, 101)
    await api.post("/nodes/pve1/lxc/101/status/start")
    await finish_tasks(sim)
    after = (await api.get("/nodes/pve1/status")).json()["data"]["memory"]
    assert after["used"] > before["used"]
    assert after["used"] + after["free"] < after["total"]  # the 8.4 rule
    await wait_for(lambda: sim.containers[101].ip == "10.0.0.101")
