"""One Proxmox client per registered node, cached and rebuilt when the node's row changes."""

from __future__ import annotations

import functools
import uuid
from typing import Any, Protocol

import httpx

from controlplane.crypto import Sealer
from controlplane.nodes.service import NodeAccess, access_of
from controlplane.proxmox import CallObserver, ProxmoxClient, make_http_client


class NodeCallObserver(Protocol):
    """Told about every call of every client the registry hands out, with the node's name."""

    def proxmox_call_ended(
        self, node: str, method: str, path: str, error: BaseException | None, seconds: float
    ) -> None: ...


def client_for_access(
    access: NodeAccess, *, timeout: float = 15.0, observer: CallObserver | None = None
) -> tuple[ProxmoxClient, httpx.AsyncClient]:
    """A client and the HTTP connection pool it owns (the caller closes the pool)."""
    http = make_http_client(
        verify_tls=access.verify_tls, fingerprint=access.tls_fingerprint, timeout=timeout
    )
    client = ProxmoxClient(
        http,
        base_url=access.api_url,
        token_id=access.token_id,
        token_secret=access.token_secret,
        observer=observer,
    )
    return client, http


class ProxmoxRegistry:
    def __init__(self, sealer: Sealer, *, observer: NodeCallObserver | None = None) -> None:
        self._sealer = sealer
        self._observer = observer
        # node id -> (the row's updated_at when built, client)
        self._clients: dict[uuid.UUID, tuple[Any, ProxmoxClient, httpx.AsyncClient]] = {}
        self._retired: list[httpx.AsyncClient] = []

    def client(self, node: dict[str, Any]) -> ProxmoxClient:
        """The client for this node row; a changed row (new token, URL, pin) gets a new one."""
        cached = self._clients.get(node["id"])
        if cached is not None and cached[0] == node["updated_at"]:
            return cached[1]
        if cached is not None:
            # In-flight calls may still use the old client; close it at shutdown.
            self._retired.append(cached[2])
        observer = None
        if self._observer is not None:
            label = str(node.get("name") or node.get("id"))
            observer = functools.partial(self._observer.proxmox_call_ended, label)
        fresh, http = client_for_access(access_of(self._sealer, node), observer=observer)
        self._clients[node["id"]] = (node["updated_at"], fresh, http)
        return fresh

    def forget(self, node_id: uuid.UUID) -> None:
        cached = self._clients.pop(node_id, None)
        if cached is not None:
            self._retired.append(cached[2])

    async def close(self) -> None:
        for http in [h for _, _, h in self._clients.values()] + self._retired:
            await http.aclose()
        self._clients.clear()
        self._retired.clear()
