"""Fixtures for the Proxmox client tests: the simulator in-process, or a real host.

The contract suite uses the ``pve`` fixture, parametrised over ``sim`` and ``real``. The
``real`` run needs ``PVE_TEST_URL`` (``https://host:8006``), ``PVE_TEST_TOKEN``
(``user@realm!id=secret``) and ``PVE_TEST_NODE``; otherwise it is skipped. Optional:
``PVE_TEST_FINGERPRINT`` or ``PVE_TEST_CA_FILE`` (else the system trust store),
``PVE_TEST_TEMPLATE`` (a CT template vmid on that node, for clone tests) and
``PVE_TEST_RESTRICTED_TOKEN`` (a token with ``PVEAuditor`` only, for the 403 tests).
Tests never touch guests they did not create, and delete what they created.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from controlplane.proxmox import ProxmoxClient, ProxmoxError, make_http_client
from controlplane.pvesim import (
    DEFAULT_TOKEN_ID,
    DEFAULT_TOKEN_SECRET,
    SimTransport,
    Simulator,
    Token,
    create_app,
)
from tests.reference import PVE_FIXTURES

FAST = {
    "vzclone": 0.03,
    "vzstart": 0.02,
    "vzstop": 0.01,
    "vzshutdown": 0.02,
    "vzreboot": 0.02,
    "vzdestroy": 0.02,
    "vztemplate": 0.01,
}
AUDITOR_ID = "auditor@pve!ro"
AUDITOR_SECRET = "auditor-secret"


def make_sim(**kwargs: object) -> Simulator:
    tokens = [
        Token(DEFAULT_TOKEN_ID, DEFAULT_TOKEN_SECRET),
        Token.with_role(AUDITOR_ID, AUDITOR_SECRET, "PVEAuditor"),
    ]
    options: dict[str, object] = {"task_durations": FAST, "tokens": tokens, **kwargs}
    return Simulator(**options)  # type: ignore[arg-type]


def sim_http(sim: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=SimTransport(create_app(sim)))


def sim_client(
    http: httpx.AsyncClient,
    token_id: str = DEFAULT_TOKEN_ID,
    secret: str = DEFAULT_TOKEN_SECRET,
) -> ProxmoxClient:
    return ProxmoxClient(
        http,
        base_url="https://pve.sim:8006",
        token_id=token_id,
        token_secret=secret,
        poll_interval=0.01,
        max_poll_interval=0.05,
    )


@dataclass
class Target:
    """One Proxmox to run the contract suite against."""

    kind: str
    http: httpx.AsyncClient
    client: ProxmoxClient
    node: str
    template: int | None
    sim: Simulator | None = None
    restricted: ProxmoxClient | None = None
    created: list[int] = field(default_factory=list)

    def with_credentials(self, token_id: str, secret: str) -> ProxmoxClient:
        return ProxmoxClient(
            self.http,
            base_url=self.client.base_url,
            token_id=token_id,
            token_secret=secret,
            poll_interval=0.01 if self.sim else 0.5,
        )

    def need_sim(self) -> Simulator:
        if self.sim is None:
            pytest.skip("needs the simulator's fault injection")
        return self.sim

    def need_template(self) -> int:
        if self.template is None:
            pytest.skip("set PVE_TEST_TEMPLATE to a CT template vmid to run clone tests")
        return self.template

    async def new_vmid(self) -> int:
        vmid = await self.client.next_id()
        self.created.append(vmid)
        return vmid

    async def cleanup(self) -> None:
        for vmid in self.created:
            with contextlib.suppress(ProxmoxError):
                status = await self.client.container_status(self.node, vmid)
                if status.get("lock"):
                    continue  # still being created or destroyed: leave it, do not force
                upid = await self.client.delete(self.node, vmid, force=True)
                await self.client.wait_task(upid, timeout=120)


async def _sim_target() -> AsyncIterator[Target]:
    sim = make_sim()
    async with sim_http(sim) as http:
        target = Target(
            kind="sim",
            http=http,
            client=sim_client(http),
            node="pve1",
            template=9000,
            sim=sim,
            restricted=sim_client(http, AUDITOR_ID, AUDITOR_SECRET),
        )
        yield target
    await sim.close()


def _split_token(value: str) -> tuple[str, str]:
    token_id, sep, secret = value.rpartition("=")
    if not sep:
        raise pytest.UsageError("PVE_TEST_TOKEN must look like user@realm!id=secret")
    return token_id, secret


async def _real_target() -> AsyncIterator[Target]:
    url, token, node = (
        os.environ.get(k) for k in ("PVE_TEST_URL", "PVE_TEST_TOKEN", "PVE_TEST_NODE")
    )
    if not (url and token and node):
        pytest.skip("set PVE_TEST_URL, PVE_TEST_TOKEN and PVE_TEST_NODE to test a real host")
    http = make_http_client(
        fingerprint=os.environ.get("PVE_TEST_FINGERPRINT"),
        ca_file=os.environ.get("PVE_TEST_CA_FILE"),
        timeout=30.0,
    )
    token_id, secret = _split_token(token)

    def client(tid: str, sec: str) -> ProxmoxClient:
        return ProxmoxClient(http, base_url=url, token_id=tid, token_secret=sec)

    restricted = os.environ.get("PVE_TEST_RESTRICTED_TOKEN")
    template = os.environ.get("PVE_TEST_TEMPLATE")
    target = Target(
        kind="real",
        http=http,
        client=client(token_id, secret),
        node=node,
        template=int(template) if template else None,
        restricted=client(*_split_token(restricted)) if restricted else None,
    )
    try:
        yield target
    finally:
        await target.cleanup()
        await http.aclose()


@pytest.fixture(params=["sim", "real"])
async def pve(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    factory = _sim_target if request.param == "sim" else _real_target
    async for target in factory():
        yield target


@pytest.fixture
async def sim_pair() -> AsyncIterator[tuple[Simulator, ProxmoxClient]]:
    """The simulator and a client for it, for tests that are about the simulator only."""
    sim = make_sim()
    async with sim_http(sim) as http:
        yield sim, sim_client(http)
    await sim.close()


@pytest.fixture(scope="session")
def recorded_response() -> Callable[[str], str]:
    """Read a recorded response from tests/data/pve/fixtures."""

    def read(name: str) -> str:
        return (PVE_FIXTURES / name).read_text()

    return read
