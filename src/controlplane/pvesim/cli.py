"""``controlplane pve-sim``: serve a simulated Proxmox VE cluster.

``pve_sim`` is a Typer-compatible command function (registered by ``controlplane.cli``);
every option has a ``PVESIM_*`` environment variable. It serves HTTPS with a freshly
generated cluster-style certificate and prints its SHA-256 fingerprint and the API token,
or plain HTTP with ``--http``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import typer

# Only what the options need: every `serve` and `worker` process imports this module (the
# CLI registers the command), so the simulator itself loads when the command runs.
from .auth import DEFAULT_TOKEN_ID, DEFAULT_TOKEN_SECRET, Token
from .faults import Faults


@dataclass
class SimConfig:
    nodes: list[str] = field(default_factory=lambda: ["pve1", "pve2"])
    host: str = "127.0.0.1"
    port: int = 8006
    http: bool = False
    tokens: list[Token] = field(
        default_factory=lambda: [Token(DEFAULT_TOKEN_ID, DEFAULT_TOKEN_SECRET)]
    )
    templates: list[int] | None = None
    node_memory_mb: int = 65536
    task_durations: dict[str, float] = field(default_factory=dict)
    loopback_ips: bool = False
    app_port: int = 8080
    seed: int = 0
    auth_delay: float = 0.0
    rrd_interval: float = 0.0
    faults: Faults = field(default_factory=Faults)
    cert_hosts: list[str] = field(default_factory=lambda: ["localhost"])
    ssh_port: int = 0
    ssh_authorized_key: str = ""
    ssh_user: str = "root"


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _durations(value: str) -> dict[str, float]:
    """``vzclone=1.5,vzstart=0.5`` to a dict."""
    result = {}
    for item in _csv(value):
        name, sep, seconds = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected TYPE=SECONDS, got {item!r}")
        result[name.strip()] = float(seconds)
    return result


async def serve(
    config: SimConfig,
    *,
    stop: asyncio.Event | None = None,
    out: Callable[[str], None] = print,
) -> None:
    """Run the simulator until ``stop`` is set (or forever); print how to reach it."""
    from .app import create_app
    from .certs import generate_cluster_cert
    from .server import HttpServer
    from .simulator import Simulator

    cert = None if config.http else generate_cluster_cert(tuple(config.cert_hosts))
    sim = Simulator(
        config.nodes,
        tokens=config.tokens,
        template_vmids=config.templates,
        node_memory_mb=config.node_memory_mb,
        task_durations=config.task_durations,
        loopback_ips=config.loopback_ips,
        app_port=config.app_port,
        faults=config.faults,
        seed=config.seed,
        auth_failure_delay=config.auth_delay,
        rrd_interval=config.rrd_interval,
        ssl_fingerprint=cert.fingerprint if cert else None,
    )
    server = await HttpServer(create_app(sim)).start(
        config.host, config.port, cert.server_context() if cert else None
    )
    closers: list[Callable[[], object]] = [server.close, sim.close]
    lines = [
        f"Simulated Proxmox VE cluster: nodes {', '.join(sim.nodes)}; templates "
        + ", ".join(str(v) for v in sorted(sim.containers)),
        f"  API:          {server.url}/api2/json",
    ]
    if cert is not None:
        lines.append(f"  fingerprint:  {cert.fingerprint}")
    for token in config.tokens:
        lines.append(f"  token:        {token.tokenid}={token.secret}")
    lines.append(f"  state:        {server.url}/_sim/state  (faults: {server.url}/_sim/faults)")
    if config.ssh_port:
        from .ssh import start_ssh_server

        ssh = await start_ssh_server(
            sim,
            authorized_key=config.ssh_authorized_key,
            host=config.host,
            port=max(config.ssh_port, 0),  # -1: any free port (tests)
            username=config.ssh_user,
        )
        closers.insert(0, ssh.close)
        lines.append(f"  ssh:          {config.ssh_user}@{config.host} port {ssh.port}")
        lines.append(f"  ssh host key: {ssh.host_public_key}")
    out("\n".join(lines))
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        for close in closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


def pve_sim(
    nodes: Annotated[
        str, typer.Option(envvar="PVESIM_NODES", help="Comma-separated node names")
    ] = "pve1,pve2",
    host: Annotated[str, typer.Option(envvar="PVESIM_HOST", help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PVESIM_PORT", help="API port (0: any)")] = 8006,
    http: Annotated[
        bool, typer.Option(envvar="PVESIM_HTTP", help="Plain HTTP instead of HTTPS")
    ] = False,
    token: Annotated[
        str,
        typer.Option(
            envvar="PVESIM_TOKEN",
            help="API tokens, comma-separated: user@realm!name=secret[:Role]; Role is "
            "Administrator (default), PVEVMAdmin, PVEVMUser, PVEAuditor or NoAccess",
        ),
    ] = f"{DEFAULT_TOKEN_ID}={DEFAULT_TOKEN_SECRET}",
    templates: Annotated[
        str,
        typer.Option(
            envvar="PVESIM_TEMPLATES",
            help="Template VMID per node, comma-separated (default 9000, 9001, ...)",
        ),
    ] = "",
    node_memory_mb: Annotated[
        int, typer.Option(envvar="PVESIM_NODE_MEMORY_MB", help="Memory of each node in MiB")
    ] = 65536,
    task_time: Annotated[
        str,
        typer.Option(
            envvar="PVESIM_TASK_TIME",
            help="Task durations in seconds, e.g. vzclone=2,vzstart=0.5 (types: vzclone, "
            "vzstart, vzstop, vzshutdown, vzreboot, vzdestroy, vztemplate, vzsnapshot, "
            "vzdelsnapshot, vzrollback, vzdump, vzrestore, imgdel, resize, vzmigrate; "
            "vzdump_per_gib, vzrestore_per_gib, vzmigrate_per_gib add time per GiB of disk)",
        ),
    ] = "",
    loopback_ips: Annotated[
        bool,
        typer.Option(
            envvar="PVESIM_LOOPBACK_IPS",
            help="Give running containers 127.100.x.y addresses with a tiny HTTP app",
        ),
    ] = False,
    app_port: Annotated[
        int, typer.Option(envvar="PVESIM_APP_PORT", help="Port of the containers' HTTP app")
    ] = 8080,
    seed: Annotated[int, typer.Option(envvar="PVESIM_SEED", help="Random seed")] = 0,
    auth_delay: Annotated[
        float, typer.Option(envvar="PVESIM_AUTH_DELAY", help="Seconds to hold back a 401 (PVE: 3)")
    ] = 0.0,
    rrd_interval: Annotated[
        float,
        typer.Option(
            envvar="PVESIM_RRD_INTERVAL", help="Seconds /cluster/resources lags (PVE: 10)"
        ),
    ] = 0.0,
    latency: Annotated[
        float, typer.Option(envvar="PVESIM_LATENCY", help="Seconds added to each API request")
    ] = 0.0,
    http_5xx_rate: Annotated[
        float, typer.Option(envvar="PVESIM_HTTP_5XX_RATE", help="Share of requests answered 596")
    ] = 0.0,
    drop_rate: Annotated[
        float,
        typer.Option(envvar="PVESIM_DROP_RATE", help="Share of connections closed unanswered"),
    ] = 0.0,
    task_failure_rate: Annotated[
        float, typer.Option(envvar="PVESIM_TASK_FAILURE_RATE", help="Share of tasks that fail")
    ] = 0.0,
    task_warning_rate: Annotated[
        float,
        typer.Option(envvar="PVESIM_TASK_WARNING_RATE", help="Share of tasks ending in WARNINGS"),
    ] = 0.0,
    stuck_lock_seconds: Annotated[
        float,
        typer.Option(
            envvar="PVESIM_STUCK_LOCK_SECONDS", help="Seconds a clone's source lock outlives it"
        ),
    ] = 0.0,
    ssh_failure_rate: Annotated[
        float,
        typer.Option(envvar="PVESIM_SSH_FAILURE_RATE", help="Share of pct exec commands failing"),
    ] = 0.0,
    cert_hosts: Annotated[
        str,
        typer.Option(envvar="PVESIM_CERT_HOSTS", help="Extra DNS names for the certificate"),
    ] = "localhost",
    ssh_port: Annotated[
        int,
        typer.Option(
            envvar="PVESIM_SSH_PORT", help="SSH port for pct exec (0: off, -1: any free port)"
        ),
    ] = 0,
    ssh_authorized_key: Annotated[
        str,
        typer.Option(
            envvar="PVESIM_SSH_AUTHORIZED_KEY",
            help="The one OpenSSH public key (or a file with it) allowed to log in over SSH",
        ),
    ] = "",
    ssh_user: Annotated[str, typer.Option(envvar="PVESIM_SSH_USER", help="SSH user")] = "root",
) -> None:
    """Serve a simulated Proxmox VE cluster (HTTPS with a self-signed certificate)."""
    try:
        faults = Faults()
        faults.update(
            {
                "latency": latency,
                "http_5xx_rate": http_5xx_rate,
                "drop_rate": drop_rate,
                "task_failure_rate": task_failure_rate,
                "task_warning_rate": task_warning_rate,
                "stuck_lock_seconds": stuck_lock_seconds,
                "ssh_failure_rate": ssh_failure_rate,
            }
        )
        config = SimConfig(
            nodes=_csv(nodes),
            host=host,
            port=port,
            http=http,
            tokens=[Token.parse(t) for t in _csv(token)],
            templates=[int(v) for v in _csv(templates)] or None,
            node_memory_mb=node_memory_mb,
            task_durations=_durations(task_time),
            loopback_ips=loopback_ips,
            app_port=app_port,
            seed=seed,
            auth_delay=auth_delay,
            rrd_interval=rrd_interval,
            faults=faults,
            cert_hosts=_csv(cert_hosts),
            ssh_port=ssh_port,
            ssh_authorized_key=_key_text(ssh_authorized_key),
            ssh_user=ssh_user,
        )
        if ssh_port and not config.ssh_authorized_key:
            raise ValueError("--ssh-port needs --ssh-authorized-key")
    except ValueError as exc:
        typer.echo(f"pve-sim: {exc}", err=True)
        raise typer.Exit(2) from None
    asyncio.run(_run_until_signal(config))


def _key_text(value: str) -> str:
    """An OpenSSH public key given inline, or read from a file."""
    value = value.strip()
    if not value or value.startswith(("ssh-", "ecdsa-", "sk-")):
        return value
    with open(value, encoding="ascii") as f:
        return f.read().strip()


async def _run_until_signal(config: SimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await serve(config, stop=stop, out=lambda text: print(text, flush=True, file=sys.stdout))
