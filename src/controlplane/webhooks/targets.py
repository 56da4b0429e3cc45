"""Where a webhook may be sent: public addresses only, unless the operator allows others.

An endpoint URL is admin input, but a control plane sits next to Proxmox's API, the
database and the cloud's metadata service: a URL pointing there would turn the sender into
a way to reach them (server-side request forgery). So, as Gitea does by default, a host that
is or resolves to a loopback, private, link-local, shared (CGNAT) or reserved address is
refused unless `WEBHOOK_ALLOW_PRIVATE` is set, for receivers on the operator's own network.

Two checks: an address or `localhost` written in the URL is refused at registration (422 on
`url`); a name is resolved before each delivery and refused then, in the delivery log, if any
of its addresses is not public. (A name that changes its answer between that check and the
connection is not caught: the check narrows the door, it does not pin the address.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

ALLOW_SETTING = "WEBHOOK_ALLOW_PRIVATE"


def _not_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").rstrip(".").lower()


def written_refusal(url: str) -> str | None:
    """Why `url` is refused at registration: its host is a non-public address or localhost."""
    host = _host(url)
    if host == "localhost" or host.endswith(".localhost"):
        return f"points at localhost; set {ALLOW_SETTING}=true for receivers on this machine"
    try:
        private = _not_public(host)
    except ValueError:
        return None  # a name: checked when it is resolved, at each delivery
    if private:
        return (
            f"points at {host}, which is not a public address; set {ALLOW_SETTING}=true "
            "for receivers on your own network"
        )
    return None


async def resolved_refusal(url: str) -> str | None:
    """Why a delivery to `url` is refused now: its name resolves to a non-public address."""
    host = _host(url)
    refusal = written_refusal(url)
    if refusal is not None:
        return refusal
    try:
        ipaddress.ip_address(host)
        return None  # a public address, written out
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return None  # let the request fail with the resolver's own error
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if _not_public(address):
            return (
                f"refused: {host} resolves to {address}, which is not a public address "
                f"({ALLOW_SETTING}=true allows it)"
            )
    return None
