"""The client's address, with `X-Forwarded-For` believed only from trusted proxies.

Anyone can send `X-Forwarded-For`, so the header counts only when the connection comes
from an address in TRUSTED_PROXIES. Then the header is read from the right: each proxy
appends the address it saw, so the right-most address that is not one of our proxies is
the client (everything left of it was written by the client and may be forged). The
result lands in `request.state.client_ip`, which the audit writer and the rate limits read.

Likewise `request.state.https` says whether the client's request came over HTTPS: the
connection's own scheme, or `X-Forwarded-Proto` as the nearest trusted proxy set it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def resolve_client_ip(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client address for a connection from `peer` carrying these XFF header values."""
    peer_address = _address(peer) if peer else None
    if peer_address is None or not trusted or not _trusted(peer_address, trusted):
        return peer
    hops = [part for value in forwarded_for for part in value.split(",") if part.strip()]
    client = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # garbage: stay with the last address a trusted proxy vouched for
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)


def resolve_https(
    scheme: str, peer: str | None, forwarded_proto: Sequence[str], trusted: Sequence[Network]
) -> bool:
    """Whether the client used HTTPS: our own scheme, or what a trusted proxy says it saw."""
    if scheme == "https":
        return True
    peer_address = _address(peer) if peer else None
    if peer_address is None or not forwarded_proto or not _trusted(peer_address, trusted):
        return False
    # The nearest proxy appends (or sets) the value last; that is the one we can believe.
    last = forwarded_proto[-1].split(",")[-1].strip().lower()
    return last == "https"


def is_https(scope: Scope) -> bool:
    """What `resolve_client` decided, or the connection's scheme where it did not run."""
    state = scope.get("state") or {}
    return bool(state["https"]) if "https" in state else scope.get("scheme") == "https"


def resolve_client(scope: Scope, trusted: Sequence[Network]) -> None:
    """Puts the resolved client address into `scope["state"]["client_ip"]`, and whether
    the request came over HTTPS into `scope["state"]["https"]` (HTTP and WebSocket scopes;
    `web.middleware.EdgeMiddleware` calls it before anything else runs)."""
    client = scope.get("client")
    headers = scope["headers"]
    forwarded = [value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"]
    peer = client[0] if client else None
    state = scope.setdefault("state", {})
    state["client_ip"] = resolve_client_ip(peer, forwarded, trusted)
    protos = [v.decode("latin-1") for n, v in headers if n == b"x-forwarded-proto"]
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    state["https"] = resolve_https(scheme, peer, protos, trusted)
