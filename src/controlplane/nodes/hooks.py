"""Start-up wiring for Proxmox: the client registry, the credential check, the node poller."""

from __future__ import annotations

from controlplane.nodes.poller import start_node_poller
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.nodes.verifier import verify_node
from controlplane.runtime import Stopper
from controlplane.state import AppState


async def start_proxmox(state: AppState, serve_api: bool) -> Stopper:
    registry = ProxmoxRegistry(state.sealer)
    state.extras["proxmox_registry"] = registry
    state.extras["node_verifier"] = verify_node
    stop_poller = await start_node_poller(state.db, registry, state.settings.node_poll_seconds)

    async def stop() -> None:
        await stop_poller()
        await registry.close()

    return stop
