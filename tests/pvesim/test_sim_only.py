"""Simulator-only controls: /_sim/state, /_sim/faults, stuck locks, loopback guest apps."""

from __future__ import annotations

import json

import httpx
import pytest

from controlplane.pvesim import Faults, SimTransport, Simulator, Token, create_app

from .conftest import ROOT, finish_tasks, new_sim, wait_for


@pytest.fixture
async def control(sim: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=SimTransport(create_app(sim)), base_url="http://sim")


async def test_state_shows_everything(
    api: httpx.AsyncClient, control: httpx.AsyncClient, sim: Simulator
) -> None:
    await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": "101"})
    state = (await control.get("/_sim/state")).json()
    assert [n["node"] for n in state["nodes"]] == ["pve1", "pve2"]
    ct = next(c for c in state["containers"] if c["vmid"] == 101)
    assert (ct["node"], ct["status"], ct["lock"], ct["ip"]) == ("pve1", "stopped", "create", None)
    assert state["tasks"][0]["type"] == "vzclone"
    assert state["tasks"][0]["status"] == "running"
    await finish_tasks(sim)
    await api.post("/nodes/pve1/lxc/101/status/start")
    await finish_tasks(sim)
    state = (await control.get("/_sim/state")).json()
    ct = next(c for c in state["containers"] if c["vmid"] == 101)
    assert (ct["status"], ct["lock"], ct["ip"]) == ("running", None, "10.0.0.101")
    assert state["nodes"][0]["memory_used"] > state["nodes"][1]["memory_used"]


async def test_faults_endpoint(control: httpx.AsyncClient, sim: Simulator) -> None:
    assert (await control.get("/_sim/faults")).json() == Faults().as_dict()
    changed = await control.put("/_sim/faults", json={"latency": 0.01, "task_failure_rate": 0.5})
    assert changed.json()["task_failure_rate"] == 0.5
    assert sim.faults.latency == 0.01
    for bad in ({"nope": 1}, {"drop_rate": 2}, {"latency": -1}, {"http_5xx_status": 404}, [1]):
        response = await control.put("/_sim/faults", json=bad)
        assert response.status_code == 400, bad
    assert sim.faults.drop_rate == 0.0  # nothing half-applied


async def test_5xx_status_is_configurable(api: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.update({"http_5xx_rate": 1, "http_5xx_status": 599})
    response = await api.get("/version")
    assert (response.status_code, response.reason_phrase) == (599, "Too many redirections")


async def test_stuck_lock_endpoint(
    api: httpx.AsyncClient, control: httpx.AsyncClient, sim: Simulator
) -> None:
    response = await control.post(
        "/_sim/locks", json={"vmid": 9000, "lock": "backup", "seconds": 0.05}
    )
    assert response.status_code == 200
    assert (await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": "101"})).reason_phrase == (
        "CT is locked (backup)"
    )
    await wait_for(lambda: sim.containers[9000].lock is None)
    assert (await control.post("/_sim/locks", json={"vmid": 1})).status_code == 400
    assert (
        await control.post("/_sim/locks", json={"vmid": 5, "lock": "x", "seconds": 1})
    ).status_code == 404


async def test_source_lock_can_outlive_the_clone(api: httpx.AsyncClient, sim: Simulator) -> None:
    sim.faults.update({"stuck_lock_seconds": 0.1})
    await api.post("/nodes/pve1/lxc/9000/clone", data={"newid": "101"})
    await finish_tasks(sim)
    assert sim.containers[9000].lock == "disk"
    await wait_for(lambda: sim.containers[9000].lock is None)


async def test_seeded_runs_are_reproducible() -> None:
    async def run() -> list[str]:
        sim = new_sim(seed=7, faults=Faults(task_failure_rate=0.5))
        async with httpx.AsyncClient(transport=SimTransport(create_app(sim))) as http:
            upids = []
            for newid in range(101, 109):
                r = await http.post(
                    "https://s/api2/json/nodes/pve1/lxc/9000/clone",
                    data={"newid": str(newid)},
                    headers=ROOT,
                )
                upids.append(r.json()["data"].split(":")[2])
                await finish_tasks(sim)
            outcomes = [t.exitstatus or "" for t in sim.tasks.values()]
        await sim.close()
        return upids + outcomes

    first, second = await run(), await run()
    assert first == second
    assert "OK" in first and any(o.startswith("clone failed") for o in first)


async def test_loopback_guest_apps() -> None:
    sim = new_sim(loopback_ips=True, app_port=0)  # port 0: an ephemeral port per container
    async with httpx.AsyncClient(transport=SimTransport(create_app(sim))) as http:
        base = "https://s/api2/json/nodes/pve1/lxc"
        await http.post(
            f"{base}/9000/clone", data={"newid": "101", "hostname": "app-1"}, headers=ROOT
        )
        await finish_tasks(sim)
        await http.post(f"{base}/101/status/start", headers=ROOT)
        await finish_tasks(sim)
        ct = sim.containers[101]
        assert ct.ip == "127.100.0.101"
        port = sim.guest_apps.port_of(101)
        assert port
        state = sim.state()
        assert next(c for c in state["containers"] if c["vmid"] == 101)["app_port"] == port
        async with httpx.AsyncClient() as guest:
            answer = (await guest.get(f"http://{ct.ip}:{port}/health")).json()
            assert answer == {"hostname": "app-1", "vmid": 101, "path": "/health"}
            await http.post(f"{base}/101/status/stop", headers=ROOT)
            await finish_tasks(sim)
            assert sim.guest_apps.port_of(101) is None
            with pytest.raises(httpx.ConnectError):
                await guest.get(f"http://127.100.0.101:{port}/")
    await sim.close()


def test_token_parsing_and_roles() -> None:
    token = Token.parse("joe@pve!ro=secret=x:PVEAuditor")
    assert (token.tokenid, token.secret) == ("joe@pve!ro", "secret=x")
    assert token.has("/vms/100", "VM.Audit") and not token.has("/vms/100", "VM.PowerMgmt")
    assert Token.parse("root@pam!cp=s").acl is None
    scoped = Token("ops@pve!tok", "s", {"/vms/100": frozenset({"VM.PowerMgmt"})})
    assert scoped.has("/vms/100", "VM.PowerMgmt") and not scoped.has("/vms/101", "VM.PowerMgmt")
    with pytest.raises(ValueError, match="user@realm!name"):
        Token("not-a-token", "s")
    with pytest.raises(ValueError, match="unknown role"):
        Token.parse("a@pve!b=s:Wizard")


def test_simulator_options() -> None:
    sim = Simulator(["a", "b", "c"], template_vmids=[500, 600, 700])
    assert {c.vmid: c.node for c in sim.containers.values()} == {500: "a", 600: "b", 700: "c"}
    with pytest.raises(ValueError, match="one template vmid per node"):
        Simulator(["a"], template_vmids=[1, 2])
    assert json.dumps(sim.state())  # serialisable


async def test_drops_look_like_socket_errors_through_plain_asgi(sim: Simulator) -> None:
    sim.faults.update({"drop_rate": 1.0})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(create_app(sim))) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("http://s/api2/json/version")
