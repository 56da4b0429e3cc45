"""The pve-sim command: options with PVESIM_* variables, HTTPS with a printed pin."""

from __future__ import annotations

import asyncio
import re

import typer
from typer.testing import CliRunner

from controlplane.proxmox import ProxmoxClient, make_http_client
from controlplane.pvesim.cli import SimConfig, pve_sim, serve
from controlplane.sshexec import generate_keypair, run_in_container


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("pve-sim")(pve_sim)
    app.command("other")(lambda: None)  # two commands, so "pve-sim" is a subcommand
    return app


def test_help_shows_environment_variables() -> None:
    result = CliRunner().invoke(cli_app(), ["pve-sim", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("PVESIM_NODES", "PVESIM_PORT", "PVESIM_HTTP", "PVESIM_TOKEN", "PVESIM_DROP_RATE",
                 "PVESIM_TASK_FAILURE_RATE", "PVESIM_LOOPBACK_IPS", "PVESIM_SSH_PORT"):  # fmt: skip
        assert name in result.output, name


def test_bad_options_exit_2() -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app(), ["pve-sim", "--drop-rate", "3"])
    assert result.exit_code == 2
    result = runner.invoke(cli_app(), ["pve-sim", "--token", "nonsense"])
    assert result.exit_code == 2
    result = runner.invoke(cli_app(), ["pve-sim", "--ssh-port", "2222"])
    assert result.exit_code == 2


async def test_serves_https_and_prints_pin_and_token() -> None:
    printed: list[str] = []
    stop = asyncio.Event()
    config = SimConfig(port=0, nodes=["alpha", "beta", "gamma"], templates=[500, 600, 700])
    running = asyncio.create_task(serve(config, stop=stop, out=printed.append))
    while not printed:
        await asyncio.sleep(0.01)
    text = printed[0]
    url = re.search(r"API:\s+(https://\S+)/api2/json", text)
    fingerprint = re.search(r"fingerprint:\s+((?:[0-9A-F]{2}:){31}[0-9A-F]{2})", text)
    token = re.search(r"token:\s+(\S+)=(\S+)", text)
    assert url and fingerprint and token
    assert "templates 500, 600, 700" in text
    async with make_http_client(fingerprint=fingerprint[1]) as http:
        client = ProxmoxClient(http, base_url=url[1], token_id=token[1], token_secret=token[2])
        nodes = await client.nodes()
    assert [n["node"] for n in nodes] == ["alpha", "beta", "gamma"]
    assert {n["ssl_fingerprint"] for n in nodes} == {fingerprint[1]}
    stop.set()
    await asyncio.wait_for(running, 5)


async def test_serves_ssh_for_pct_exec() -> None:
    keys = generate_keypair()
    printed: list[str] = []
    stop = asyncio.Event()
    config = SimConfig(port=0, http=True, ssh_port=-1, ssh_authorized_key=keys.public_openssh)
    running = asyncio.create_task(serve(config, stop=stop, out=printed.append))
    while not printed:
        await asyncio.sleep(0.01)
    assert "fingerprint" not in printed[0]  # plain HTTP
    port = re.search(r"ssh:\s+root@127.0.0.1 port (\d+)", printed[0])
    host_key = re.search(r"ssh host key: (ssh-ed25519 \S+)", printed[0])
    assert port and host_key
    result = await run_in_container(
        host="127.0.0.1",
        port=int(port[1]),
        username="root",
        private_key_pem=keys.private_pem,
        known_host_key=host_key[1],
        vmid=9000,
        command="true",
        timeout=5,
    )
    assert (result.exit_status, result.stderr) == (255, "container '9000' not running!\n")
    stop.set()
    await asyncio.wait_for(running, 5)
