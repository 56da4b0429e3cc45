"""Rules for WireGuard peers of the hub; the functions other code calls.

    list_peers · get_peer · create_peer · update_peer · set_enabled · delete_peer
    render_config · render_qr

Every function takes the settings first and raises `WireGuardDisabled` (404) unless
`WG_HUB_PUBLIC_KEY` is set. A peer gets the lowest free address of `WG_SUBNET` (the hub
has the first one); allocation and the overlap check of allowed IPs run under one
transaction-scoped advisory lock, with a unique constraint on the address behind it, so
concurrent creators never share an address. A generated private key is sealed with the
row id before it reaches SQL and leaves only inside `render_config`/`render_qr`.

The hub interface follows the table by itself: a trigger notifies `wireguard_peers` on every
change and the syncer (`wireguard.sync`) applies it, so nothing here talks to the interface
and an unreachable interface never fails a change.
"""

from __future__ import annotations

import io
import ipaddress
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import segno

from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import ConstraintViolation, Executor, load_queries
from controlplane.errors import Conflict, Invalid, NoPrivateKey, NotFound, WireGuardDisabled
from controlplane.wireguard.keys import generate_keypair
from controlplane.wireguard.schemas import PeerCreate, PeerUpdate

_Q = load_queries("controlplane.wireguard")

# pg_advisory_xact_lock key for "allocating WireGuard peer addresses" ("wgpeer").
LOCK_KEY = 0x7767_7065_6572
KEEPALIVE_SECONDS = 25
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class WgConfig:
    """The WireGuard settings, parsed."""

    hub_public_key: str
    endpoint: str
    subnet: IpNetwork
    interface: str
    dns: tuple[str, ...]
    client_allowed_ips: tuple[str, ...]
    uapi_dir: str
    allow_wide: bool = False  # WG_ALLOW_WIDE_ALLOWED_IPS


def config_of(settings: Settings) -> WgConfig:
    """The parsed WireGuard settings; `WireGuardDisabled` when it is not switched on."""
    if not settings.wg_hub_public_key or not settings.wg_endpoint:
        raise WireGuardDisabled()
    subnet = ipaddress.ip_network(settings.wg_subnet)
    return WgConfig(
        hub_public_key=settings.wg_hub_public_key,
        endpoint=settings.wg_endpoint,
        subnet=subnet,
        interface=settings.wg_interface,
        dns=tuple(settings.wg_dns),
        client_allowed_ips=tuple(settings.wg_client_allowed_ips or [str(subnet)]),
        uapi_dir=settings.wg_uapi_dir,
        allow_wide=settings.wg_allow_wide_allowed_ips,
    )


# The widest network a peer may have behind it, unless WG_ALLOW_WIDE_ALLOWED_IPS: anything
# wider (0.0.0.0/0, ::/0, 128.0.0.0/1 ...) would pull the hub's traffic into one peer.
WIDEST_PREFIX = {4: 8, 6: 32}


def _host_network(address: str) -> str:
    return str(ipaddress.ip_network(address))  # "10.66.0.2" -> "10.66.0.2/32"


def _extra_networks(cfg: WgConfig, networks: list[str], own: str | None) -> list[str]:
    """Networks behind the peer, checked against WG_SUBNET (the peer's own /32 is dropped)."""
    own_net = _host_network(own) if own else None
    extras = []
    for value in networks:
        network = ipaddress.ip_network(value)
        if str(network) == own_net:
            continue
        if network.prefixlen < WIDEST_PREFIX[network.version] and not cfg.allow_wide:
            raise Invalid(
                f"{value} is a catch-all: the hub would route (nearly) every address to this "
                f"one peer; list the networks behind it (at most /{WIDEST_PREFIX[4]} for IPv4, "
                f"/{WIDEST_PREFIX[6]} for IPv6), or set WG_ALLOW_WIDE_ALLOWED_IPS=true",
                field="allowed_ips",
            )
        if network.version == cfg.subnet.version and network.overlaps(cfg.subnet):  # type: ignore[arg-type]
            raise Invalid(
                f"{value} lies inside WG_SUBNET {cfg.subnet}, whose addresses the control "
                "plane hands out; list only networks behind the peer",
                field="allowed_ips",
            )
        extras.append(str(network))
    return extras


def _alloc_params(cfg: WgConfig) -> dict[str, Any]:
    subnet = cfg.subnet
    last = subnet.num_addresses - 2 if subnet.version == 4 else subnet.num_addresses - 1
    return {
        "base": str(subnet.network_address),
        "network": str(subnet),
        "first": 2,  # .0 is the network, .1 the hub
        "last": min(last, 2**62),
    }


async def _check_overlap(tx: Executor, peer_id: uuid.UUID, networks: list[str]) -> None:
    clash = await tx.fetch_one(_Q["peer_overlap"], {"id": peer_id, "networks": networks})
    if clash is not None:
        raise Conflict(
            f"allowed_ips overlap {clash['network']} of peer {clash['name']!r}; the hub can "
            "route a network to only one peer",
            field="allowed_ips",
        )


def _conflict(exc: ConstraintViolation) -> Exception:
    if exc.constraint == "wireguard_peers_public_key_key":
        return Conflict("a peer with this public key already exists", field="public_key")
    if exc.constraint == "wireguard_peers_address_key":
        return Conflict("the address was taken at the same time; retry")
    if exc.constraint == "wireguard_peers_tenant_id_fkey":
        return Invalid("no tenant with this id", field="tenant_id")
    return Conflict(f"conflicts with an existing peer: {exc}")


async def get_peer(db: Executor, settings: Settings, peer_id: uuid.UUID) -> dict[str, Any]:
    config_of(settings)
    row = await db.fetch_one(_Q["peer_get"], {"id": peer_id})
    if row is None:
        raise NotFound(f"WireGuard peer {peer_id} not found")
    return row


async def list_peers(
    db: Executor,
    settings: Settings,
    *,
    limit: int = 50,
    offset: int = 0,
    enabled: bool | None = None,
    tenant_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A page of peers, oldest first: `{"items", "total", "limit", "offset"}`."""
    config_of(settings)
    row = await db.fetch_one(
        _Q["peer_page"],
        {
            "enabled": enabled,
            "tenant_id": tenant_id,
            "user_id": user_id,
            "limit": limit,
            "offset": offset,
        },
    )
    assert row is not None
    return {"items": row["items"], "total": row["total"], "limit": limit, "offset": offset}


async def create_peer(
    db: Executor, sealer: Sealer, settings: Settings, data: PeerCreate
) -> dict[str, Any]:
    """Create a peer with the next free address; generate its key pair unless one is given."""
    cfg = config_of(settings)
    peer_id = uuid.uuid4()
    if data.public_key is not None:
        if data.public_key == cfg.hub_public_key:
            raise Invalid("is the hub's own public key", field="public_key")
        public_key, sealed = data.public_key, None
    else:
        private_key, public_key = generate_keypair()
        sealed = sealer.seal(
            private_key, table="wireguard_peers", column="private_key", row_id=peer_id
        )
    extras = _extra_networks(cfg, data.allowed_ips, None)
    try:
        async with db.transaction() as tx:
            await tx.execute(_Q["lock_peers"], {"key": LOCK_KEY})
            address = await tx.fetch_val(_Q["next_free_address"], _alloc_params(cfg))
            if address is None:
                used = await tx.fetch_val(_Q["peer_count_in"], {"network": str(cfg.subnet)})
                raise Conflict(
                    f"WG_SUBNET {cfg.subnet} has no free address left ({used} peers); "
                    "delete a peer or widen the subnet"
                )
            allowed = [_host_network(address), *extras]
            await _check_overlap(tx, peer_id, allowed)
            await tx.execute(
                _Q["peer_insert"],
                {
                    "id": peer_id,
                    "name": data.name,
                    "public_key": public_key,
                    "private_key_sealed": sealed,
                    "address": address,
                    "allowed_ips": allowed,
                    "enabled": data.enabled,
                    "notes": data.notes,
                    "tenant_id": data.tenant_id,
                    "user_id": data.user_id,
                },
            )
    except ConstraintViolation as exc:
        raise _conflict(exc) from None
    return await get_peer(db, settings, peer_id)


async def update_peer(
    db: Executor, settings: Settings, peer_id: uuid.UUID, data: PeerUpdate
) -> dict[str, Any]:
    """Change the name, the allowed IPs (networks behind the peer) or the notes."""
    cfg = config_of(settings)
    changes = data.model_dump(exclude_unset=True)
    params: dict[str, Any] = {
        "id": peer_id,
        "name": changes.get("name"),
        "allowed_ips": None,
        "notes": changes.get("notes"),
        "set_notes": "notes" in changes,
    }
    async with db.transaction() as tx:
        if changes.get("allowed_ips") is not None:
            await tx.execute(_Q["lock_peers"], {"key": LOCK_KEY})
            current = await tx.fetch_one(_Q["peer_get"], {"id": peer_id})
            if current is None:
                raise NotFound(f"WireGuard peer {peer_id} not found")
            own = current["address"]
            allowed = [_host_network(own), *_extra_networks(cfg, changes["allowed_ips"], own)]
            await _check_overlap(tx, peer_id, allowed)
            params["allowed_ips"] = allowed
        if await tx.fetch_one(_Q["peer_update"], params) is None:
            raise NotFound(f"WireGuard peer {peer_id} not found")
    return await get_peer(db, settings, peer_id)


async def set_enabled(
    db: Executor, settings: Settings, peer_id: uuid.UUID, enabled: bool
) -> dict[str, Any]:
    """Enable or disable a peer (a no-op when it already is); returns the peer."""
    config_of(settings)
    await db.fetch_one(_Q["peer_set_enabled"], {"id": peer_id, "enabled": enabled})
    return await get_peer(db, settings, peer_id)


async def delete_peer(db: Executor, settings: Settings, peer_id: uuid.UUID) -> dict[str, Any]:
    """Delete a peer; returns what it was (id, name, public_key, address)."""
    config_of(settings)
    row = await db.fetch_one(_Q["peer_delete"], {"id": peer_id})
    if row is None:
        raise NotFound(f"WireGuard peer {peer_id} not found")
    return row


async def render_config(
    db: Executor, sealer: Sealer, settings: Settings, peer_id: uuid.UUID
) -> str:
    """The peer's wg-quick file. `NoPrivateKey` (409) when the peer brought its own key."""
    cfg = config_of(settings)
    row = await db.fetch_one(_Q["peer_secret"], {"id": peer_id})
    if row is None:
        raise NotFound(f"WireGuard peer {peer_id} not found")
    if row["private_key_sealed"] is None:
        raise NoPrivateKey(
            f"peer {row['name']!r} was created with its own public key, so only its owner has "
            "the private key: there is no config file or QR code to give out"
        )
    private_key = sealer.open(
        row["private_key_sealed"], table="wireguard_peers", column="private_key", row_id=row["id"]
    )
    address = ipaddress.ip_address(str(row["address"]).split("/", 1)[0])
    lines = [
        f"# {row['name']} (WireGuard peer {row['id']})",
        "[Interface]",
        f"PrivateKey = {private_key}",
        f"Address = {address}/{address.max_prefixlen}",
    ]
    if cfg.dns:
        lines.append(f"DNS = {', '.join(cfg.dns)}")
    lines += [
        "",
        "[Peer]",
        f"PublicKey = {cfg.hub_public_key}",
        f"AllowedIPs = {', '.join(cfg.client_allowed_ips)}",
        f"Endpoint = {cfg.endpoint}",
        f"PersistentKeepalive = {KEEPALIVE_SECONDS}",
    ]
    return "\n".join(lines) + "\n"


async def render_qr(
    db: Executor,
    sealer: Sealer,
    settings: Settings,
    peer_id: uuid.UUID,
    *,
    kind: Literal["png", "svg"] = "png",
    scale: int = 4,
) -> bytes:
    """The config file as a QR code (PNG or SVG) for the WireGuard mobile apps."""
    text = await render_config(db, sealer, settings, peer_id)
    code = segno.make(text, error="m", micro=False)
    out = io.BytesIO()
    if kind == "svg":
        code.save(out, kind="svg", scale=scale, border=4, title="WireGuard configuration")
    else:
        code.save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
