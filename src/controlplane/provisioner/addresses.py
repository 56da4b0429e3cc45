"""Which address a tenant's container may be reached at, and where it comes from.

Root inside a container controls its interfaces, so what a container reports about itself
is the tenant's word. Caddy proxies the tenant's public host name to that address and the
health checker GETs it, so a tenant that could choose it would make the operator's edge
read the operator's own network. The rules:

- the address lies in `TENANT_NETWORKS` (the networks the operator's tenant containers
  live in); loopback only inside a listed range that is itself loopback (the demo's
  simulated containers), never because a wide network happens to contain it;
- never link-local, multicast, unspecified or reserved, never the control plane's own
  address (hosts of PUBLIC_URL, ADMIN_ORIGIN, CADDY_ADMIN_URL, BIND_ADDR), never inside
  WG_SUBNET, never a registered node's (API URL or SSH host), never another live tenant's;
- an `ip=` set on the host side (`net0` in the container's config: the template's or the
  operator's IPAM) wins over anything the container reports;
- the address is pinned at first provisioning (before the tenant has any access to the
  container); a later, different report is recorded for the operator and flagged in
  `health` (`address_changed`), never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The address families' whole loopback ranges.
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def host_of(url_or_host: str | None) -> str | None:
    """`https://cp.example.com:8443/x` -> `cp.example.com`; a bare host is returned as is."""
    if not url_or_host:
        return None
    text = url_or_host.strip()
    if "://" in text:
        return urlsplit(text).hostname
    return text.strip("[]") or None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(hosts: Iterable[str | None]) -> set[IPAddress]:
    """The addresses of `hosts`: literal ones as they are, names through the resolver.

    A name that does not resolve adds nothing (it cannot be anyone's address either).
    """
    found: set[IPAddress] = set()
    loop = asyncio.get_running_loop()
    for host in hosts:
        if not host:
            continue
        literal = _literal(host)
        if literal is not None:
            found.add(literal)
            continue
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout=2.0
            )
        except (OSError, TimeoutError, UnicodeError):
            continue
        for info in infos:
            address = _literal(str(info[4][0]).split("%", 1)[0])
            if address is not None:
                found.add(address)
    return found


@dataclass(frozen=True)
class AddressPolicy:
    """The rules above that need no database: `refusal()` says why an address is not allowed."""

    networks: tuple[IPNetwork, ...]
    # Hosts (names or literal addresses) of the control plane itself.
    own_hosts: tuple[str, ...] = ()
    forbidden_networks: tuple[IPNetwork, ...] = ()
    _own: frozenset[IPAddress] = field(default=frozenset(), repr=False)

    @classmethod
    def build(
        cls,
        *,
        networks: Sequence[str],
        own_hosts: Sequence[str | None] = (),
        forbidden_networks: Sequence[str] = (),
    ) -> AddressPolicy:
        hosts = tuple(h for h in own_hosts if h)
        return cls(
            networks=tuple(ipaddress.ip_network(n) for n in networks),
            own_hosts=hosts,
            forbidden_networks=tuple(ipaddress.ip_network(n) for n in forbidden_networks),
            _own=frozenset(a for a in (_literal(h) for h in hosts) if a is not None),
        )

    @classmethod
    def from_settings(cls, settings: Any) -> AddressPolicy:
        own = [
            host_of(settings.public_url),
            host_of(settings.admin_origin),
            host_of(settings.caddy_admin_url),
            settings.bind_addr,
        ]
        return cls.build(
            networks=settings.tenant_networks,
            own_hosts=[h for h in own if h and h not in ("0.0.0.0", "::")],
            forbidden_networks=[settings.wg_subnet],
        )

    def refusal(self, text: str, *, own: Iterable[IPAddress] = ()) -> str | None:
        """None when `text` may be a tenant's address; otherwise why not (for the operator)."""
        try:
            address = ipaddress.ip_address(text.strip().split("/", 1)[0])
        except ValueError:
            return f"{text!r} is not an IP address"
        if address.version == 6 and address.ipv4_mapped is not None:  # type: ignore[union-attr]
            address = address.ipv4_mapped  # type: ignore[union-attr]
        if address.is_unspecified:
            return f"{address} is the unspecified address"
        if address.is_link_local:
            return f"{address} is link-local"
        if address.is_multicast:
            return f"{address} is multicast"
        if address in self._own or address in set(own):
            return f"{address} is the control plane's own address"
        if any(address in net for net in self.forbidden_networks):
            return f"{address} is in WG_SUBNET (the WireGuard hub's network)"
        inside = [net for net in self.networks if address in net]
        if address.is_loopback:
            if not any(_is_loopback_range(net) for net in inside):
                return (
                    f"{address} is loopback, outside TENANT_NETWORKS' loopback ranges "
                    "(list one explicitly, e.g. 127.100.0.0/16, to allow it)"
                )
        elif not inside:
            listed = ", ".join(str(n) for n in self.networks) or "nothing"
            return f"{address} is outside TENANT_NETWORKS ({listed})"
        elif address.is_reserved or (address.version == 4 and address == _BROADCAST):
            return f"{address} is a reserved address"
        return None

    async def own_addresses(self) -> set[IPAddress]:
        """The control plane's own addresses, names resolved now."""
        return await resolve(self.own_hosts)


_BROADCAST = ipaddress.ip_address("255.255.255.255")


def _is_loopback_range(net: IPNetwork) -> bool:
    return any(net.version == lo.version and net.subnet_of(lo) for lo in _LOOPBACK)  # type: ignore[arg-type]


def static_address(config: dict[str, Any] | None) -> str | None:
    """The `ip=` of `net0` when the host side sets one (`10.0.0.5/24`), else None."""
    net0 = (config or {}).get("net0")
    if not net0:
        return None
    # A property string: `name=eth0,bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.0.1`.
    options = dict(part.partition("=")[::2] for part in str(net0).split(","))
    ip = options.get("ip", "").strip()
    if "/" not in ip:  # dhcp, manual, or nothing
        return None
    return str(ipaddress.ip_interface(ip).ip) if _interface_ok(ip) else None


def _interface_ok(text: str) -> bool:
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return True


def reported_addresses(interfaces: list[dict[str, Any]] | None) -> list[str]:
    """Every address the container reports, in its order, loopback interface skipped."""
    found: list[str] = []
    for iface in interfaces or []:
        if iface.get("name") == "lo":
            continue
        for key in ("inet", "inet6"):
            value = iface.get(key)
            if value and _interface_ok(str(value)):
                address = str(ipaddress.ip_interface(str(value)).ip)
                if address not in found:
                    found.append(address)
    return found
