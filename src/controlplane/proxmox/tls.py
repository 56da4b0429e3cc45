"""The ``httpx.AsyncClient`` factory: CA verification or SHA-256 certificate pinning.

Most Proxmox hosts serve a certificate signed by the cluster's own CA, so the usual choice
is to pin the leaf certificate's SHA-256 fingerprint (the ``AA:BB:..`` value that ``GET
/nodes`` shows as ``ssl_fingerprint``). With a pin, CA and hostname checks are replaced by
the pin, exactly like Proxmox's own API client does (docs/proxmox-reference.md section 8).

The pin is checked inside the connection setup, right after the TLS handshake and before
httpcore writes a single request byte, by wrapping httpcore's network backend. The API
token therefore never reaches a server whose certificate does not match.

Idle pooled connections expire after 4 s, below pveproxy's 5 s keep-alive timeout, so a
pooled connection is never reused after the server has already closed it.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import string
from typing import Any

import httpcore
import httpx

from .errors import ProxmoxTLSError

KEEPALIVE_EXPIRY = 4.0  # seconds; pveproxy closes idle keep-alive connections after 5 s


def normalize_fingerprint(value: str) -> str:
    """Return ``AA:BB:...`` upper-case form; accept plain hex and any case."""
    hexdigits = value.strip().replace(":", "").replace(" ", "").lower()
    if len(hexdigits) != 64 or any(c not in string.hexdigits for c in hexdigits):
        raise ValueError("a SHA-256 fingerprint is 32 bytes in hex, e.g. 'AA:BB:...' (95 chars)")
    return ":".join(hexdigits[i : i + 2] for i in range(0, 64, 2)).upper()


def certificate_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, written the way Proxmox shows it."""
    return normalize_fingerprint(hashlib.sha256(der).hexdigest())


class _PinnedStream(httpcore.AsyncNetworkStream):
    """A network stream whose ``start_tls`` checks the peer certificate against the pin."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, pin: bytes) -> None:
        self._inner = inner
        self._pin = pin

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls_stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        ssl_object = tls_stream.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        seen = hashlib.sha256(der).digest() if der else b""
        if not hmac.compare_digest(seen, self._pin):
            await tls_stream.aclose()
            got = certificate_fingerprint(der) if der else "no certificate"
            want = normalize_fingerprint(self._pin.hex())
            raise ProxmoxTLSError(
                f"TLS certificate of {server_hostname} does not match the pinned SHA-256 "
                f"fingerprint (expected {want}, got {got}); nothing was sent",
                presented=certificate_fingerprint(der) if der else None,
            )
        return tls_stream


class _PinningBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, pin: bytes) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._pin = pin

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _PinnedStream(stream, self._pin)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _PinnedStream(stream, self._pin)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """``AsyncHTTPTransport`` whose connections are accepted only with the pinned certificate.

    httpx 0.28 offers no public hook for a network backend, so the connection pool built by
    the parent class is replaced by an identical one that uses the pinning backend.
    """

    def __init__(self, fingerprint: str, *, limits: httpx.Limits) -> None:
        ctx = ssl.create_default_context()
        # The pin replaces CA and hostname verification (a self-signed cert has neither).
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__(verify=ctx, limits=limits, trust_env=False)
        pin = bytes.fromhex(normalize_fingerprint(fingerprint).replace(":", ""))
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ctx,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_PinningBackend(pin),
        )


def make_http_client(
    *,
    verify_tls: bool = True,
    ca_file: str | None = None,
    fingerprint: str | None = None,
    timeout: float = 10.0,
) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` to hand to ``ProxmoxClient``.

    - ``fingerprint``: pin the server certificate (``AA:BB:..`` or plain hex); CA and
      hostname checks are then not used.
    - ``ca_file``: verify against this CA bundle (e.g. ``pve-root-ca.pem``) plus hostname.
    - neither: verify against the system trust store.
    - ``verify_tls=False`` (and no fingerprint): no verification at all. Only when asked.
    """
    limits = httpx.Limits(
        max_connections=20, max_keepalive_connections=10, keepalive_expiry=KEEPALIVE_EXPIRY
    )
    client_timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
    if fingerprint is not None:
        return httpx.AsyncClient(
            transport=PinnedTransport(fingerprint, limits=limits), timeout=client_timeout
        )
    verify: ssl.SSLContext | bool
    if not verify_tls:
        verify = False
    elif ca_file is not None:
        verify = ssl.create_default_context(cafile=ca_file)
    else:
        verify = ssl.create_default_context()
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, trust_env=False)
    return httpx.AsyncClient(transport=transport, timeout=client_timeout)
