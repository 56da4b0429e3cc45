"""Checking a node's credentials against Proxmox before saving it.

Each way the check can fail becomes a 422 that names the field to fix: the URL cannot be
reached, the TLS pin or CA does not match, the token is refused or lacks rights, or the
node name is not part of that cluster.
"""

from __future__ import annotations

import asyncio
from typing import Any

from controlplane.errors import Invalid
from controlplane.nodes.registry import client_for_access
from controlplane.nodes.service import NodeAccess, NodeFacts
from controlplane.proxmox import (
    ProxmoxAuthError,
    ProxmoxClient,
    ProxmoxError,
    ProxmoxPermissionError,
    ProxmoxTLSError,
    ProxmoxUnavailableError,
)

SSH_CHECK_TIMEOUT = 8.0


def templates_of(containers: list[dict[str, Any]]) -> list[int]:
    return sorted(int(c["vmid"]) for c in containers if c.get("template"))


async def read_facts(client: ProxmoxClient, pve_node: str) -> NodeFacts:
    version = await client.version()
    status = await client.node_status(pve_node)
    containers = await client.list_containers(pve_node)
    memory = status.get("memory") or {}
    return NodeFacts(
        total_ram_mb=int(memory.get("total", 0)) // (1024 * 1024),
        mem_used_mb=int(memory.get("used", 0)) // (1024 * 1024),
        pve_version=str(version.get("version") or "") or None,
        templates=templates_of(containers),
    )


async def verify_ssh_host_key(host: str, port: int, pinned_text: str) -> None:
    """Connect to the node's SSH server and compare the host key it presents with the one
    pinned, so a wrong key is refused now rather than at a tenant's bootstrap step."""
    # Imported here, not at start-up (see sshexec/pinned.py): few nodes have SSH.
    import asyncssh

    try:
        pinned = asyncssh.import_public_key(pinned_text.strip())
    except (asyncssh.KeyImportError, ValueError):
        raise Invalid("is not an OpenSSH public key (as in ssh_host_*_key.pub)",
                      field="ssh_host_key") from None  # fmt: skip
    try:
        async with asyncio.timeout(SSH_CHECK_TIMEOUT):
            presented = await asyncssh.get_server_host_key(
                host, port, server_host_key_algs=[pinned.get_algorithm()]
            )
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        raise Invalid(f"cannot reach SSH at {host}:{port}: {exc or type(exc).__name__}",
                      field="ssh_host") from None  # fmt: skip
    if presented is None or presented.public_data != pinned.public_data:
        shown = presented.get_fingerprint() if presented is not None else "no key"
        raise Invalid(
            f"{host}:{port} presents {pinned.get_algorithm()} host key {shown}, not the pinned "
            f"one ({pinned.get_fingerprint()})",
            field="ssh_host_key",
        )


async def verify_node(access: NodeAccess) -> NodeFacts:
    if access.ssh_host and access.ssh_host_key:
        await verify_ssh_host_key(access.ssh_host, access.ssh_port, access.ssh_host_key)
    client, http = client_for_access(access, timeout=8.0)
    try:
        nodes = await client.nodes()
        names = {str(n.get("node")) for n in nodes}
        if access.pve_node not in names:
            raise Invalid(
                f"Proxmox at {access.api_url} has no node named {access.pve_node!r}"
                f" (it has: {', '.join(sorted(names)) or 'none visible to this token'})",
                field="pve_node",
            )
        return await read_facts(client, access.pve_node)
    except ProxmoxTLSError as exc:
        raise Invalid(f"TLS check failed: {exc}", field="tls_fingerprint") from None
    except ProxmoxAuthError as exc:
        raise Invalid(f"Proxmox refused the token: {exc}", field="token_id") from None
    except ProxmoxPermissionError as exc:
        raise Invalid(f"the token lacks a permission: {exc}", field="token_id") from None
    except ProxmoxUnavailableError as exc:
        raise Invalid(f"cannot reach Proxmox at {access.api_url}: {exc}", field="api_url") from None
    except ProxmoxError as exc:
        raise Invalid(f"Proxmox answered with an error: {exc}", field="api_url") from None
    finally:
        await http.aclose()
