"""The `controlplane` command line."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from controlplane.config import SettingsError, load_settings
from controlplane.web.logs import configure_logging

app = typer.Typer(help="Control plane for LXC containers on Proxmox VE.", no_args_is_help=True)


def _database_or_exit(settings):  # type: ignore[no-untyped-def]
    """Resolve the database and apply migrations before serving, failing with one clear line."""
    from controlplane.db.migrate import MigrationError
    from controlplane.db.migrate import migrate as run_migrations
    from controlplane.runtime import resolve_database_url

    try:
        url = resolve_database_url(settings)
        asyncio.run(run_migrations(url))
    except MigrationError as exc:
        typer.echo(f"controlplane: cannot start: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"controlplane: cannot reach the database: {exc}", err=True)
        raise typer.Exit(1) from None
    return url


def _settings_or_exit(**overrides: object):  # type: ignore[no-untyped-def]
    try:
        settings = load_settings(**overrides)
        settings.require_secrets()
    except SettingsError as exc:
        typer.echo(f"controlplane: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(envvar="BIND_ADDR", help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(envvar="HOST_PORT", help="Port to listen on")] = None,
    workers: Annotated[
        bool, typer.Option(envvar="RUN_WORKERS", help="Also run the provisioning workers")
    ] = True,
) -> None:
    """Serve the API (and, by default, the workers)."""
    from controlplane.app import create_app
    from controlplane.web.server import ConnectionLimits, uvicorn_config

    settings = _settings_or_exit(run_workers=workers)
    configure_logging(settings.log_level)
    import uvicorn

    url = _database_or_exit(settings)
    # By default the workers run in a child process (see provisioner/supervisor.py), so
    # the API's event loop serves only requests.
    supervised = settings.run_workers and settings.worker_process
    if supervised:
        settings = settings.model_copy(update={"run_workers": False})
    application = create_app(settings, database_url=url)
    if supervised:
        from controlplane.provisioner.supervisor import WorkerSupervisor, with_worker_process
        from controlplane.runtime import STOP_TIMEOUT

        application.router.lifespan_context = with_worker_process(
            application.router.lifespan_context,
            WorkerSupervisor(url, stop_timeout=STOP_TIMEOUT),
        )
    config = uvicorn_config(
        application,
        host=host or settings.bind_addr,
        port=port or settings.host_port,
        limits=ConnectionLimits.from_settings(settings),
    )
    _exit_normally_on_signals()
    uvicorn.Server(config).run()


def _exit_normally_on_signals() -> None:
    """Make SIGTERM and SIGINT end the process with exit code 0, after uvicorn's shutdown.

    uvicorn shuts down gracefully on either and then raises the signal again. With the
    default handler that kills the process (exit -15, `atexit` skipped: an embedded
    PostgreSQL would be left running); with this one it exits normally.
    """

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, leave)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(envvar="WORKER_CONCURRENCY", help="Jobs at once")
    ] = None,
) -> None:
    """Run only the provisioning workers and pollers (no API); stops cleanly on SIGTERM."""
    from controlplane.provisioner.supervisor import die_with_supervisor, signal_ready
    from controlplane.runtime import run_worker_process

    overrides: dict[str, object] = {}
    if concurrency is not None:
        overrides["worker_concurrency"] = concurrency
    settings = _settings_or_exit(**overrides)
    die_with_supervisor(nice=settings.worker_process_nice)  # when `serve` started us
    configure_logging(settings.log_level)
    asyncio.run(run_worker_process(settings, ready=signal_ready))


@app.command()
def migrate() -> None:
    """Apply database migrations and exit."""
    from controlplane.db.migrate import MigrationError
    from controlplane.db.migrate import migrate as run_migrations
    from controlplane.runtime import resolve_database_url

    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        applied = asyncio.run(run_migrations(resolve_database_url(settings)))
    except MigrationError as exc:
        typer.echo(f"controlplane: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(envvar="BIND_ADDR", help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(envvar="HOST_PORT", help="Port to listen on")] = None,
) -> None:
    """The whole system on embedded defaults: PostgreSQL, a simulated cluster, the workers."""
    from controlplane.demo import demo_main

    settings = _settings_or_exit()
    configure_logging(settings.log_level)
    url = _database_or_exit(settings)
    demo_main(
        settings, database_url=url, host=host or settings.bind_addr, port=port or settings.host_port
    )


@app.command("init-env")
def init_env(
    path: Annotated[Path, typer.Option(help="The .env file to complete")] = Path(".env"),
) -> None:
    """Generate missing secrets into .env and print the admin token once."""
    import os

    from controlplane.envfile import ensure_env

    created = ensure_env(path, dict(os.environ))
    if created:
        typer.echo(f"wrote {', '.join(created)} to {path}")
        if "API_TOKEN" in created:
            typer.echo(f"admin API token (shown once): {created['API_TOKEN']}")
        if "SETUP_TOKEN" in created:
            typer.echo(f"dashboard setup token (shown once): {created['SETUP_TOKEN']}")


def _register_pve_sim() -> None:
    from controlplane.pvesim.cli import pve_sim

    app.command("pve-sim", help="Serve a simulated Proxmox VE cluster (tests, demo, benchmarks).")(
        pve_sim
    )


_register_pve_sim()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
