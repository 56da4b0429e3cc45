"""TLS: certificate pinning is checked after the handshake and before any request byte."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controlplane.proxmox import ProxmoxClient, ProxmoxTLSError, make_http_client
from controlplane.proxmox.tls import normalize_fingerprint
from controlplane.pvesim import DEFAULT_TOKEN_ID, DEFAULT_TOKEN_SECRET, HttpServer, create_app
from controlplane.pvesim.certs import ClusterCert, generate_cluster_cert

from .conftest import make_sim


@pytest.fixture(scope="module")
def cert() -> ClusterCert:
    return generate_cluster_cert()


@pytest.fixture
async def https_sim(cert: ClusterCert) -> AsyncIterator[HttpServer]:
    sim = make_sim(ssl_fingerprint=cert.fingerprint)
    server = await HttpServer(create_app(sim)).start("127.0.0.1", 0, cert.server_context())
    yield server
    await server.close()
    await sim.close()


@contextlib.asynccontextmanager
async def pve_client(url: str, **tls: object) -> AsyncIterator[ProxmoxClient]:
    async with make_http_client(**tls) as http:  # type: ignore[arg-type]
        yield ProxmoxClient(
            http, base_url=url, token_id=DEFAULT_TOKEN_ID, token_secret=DEFAULT_TOKEN_SECRET
        )


async def test_right_fingerprint_connects(https_sim: HttpServer, cert: ClusterCert) -> None:
    plain_hex = cert.fingerprint.replace(":", "").lower()
    for fingerprint in (cert.fingerprint, plain_hex):
        async with pve_client(https_sim.url, fingerprint=fingerprint) as client:
            nodes = await client.nodes()
        # the simulator shows its pin where PVE does, so an operator can copy it
        assert nodes[0]["ssl_fingerprint"] == cert.fingerprint


async def test_ca_file_verification(
    https_sim: HttpServer, cert: ClusterCert, tmp_path: Path
) -> None:
    ca_file = tmp_path / "pve-root-ca.pem"
    ca_file.write_bytes(cert.ca_pem)
    async with pve_client(https_sim.url, ca_file=str(ca_file)) as client:
        assert (await client.version())["release"] == "8.4"


async def test_untrusted_certificate_is_a_clear_error(https_sim: HttpServer) -> None:
    # the system trust store does not know the cluster's CA
    async with pve_client(https_sim.url) as client:
        with pytest.raises(ProxmoxTLSError, match=r"TLS verification of .* failed") as err:
            await client.version()
    assert "fingerprint" in str(err.value)


async def test_verification_off_only_when_asked(https_sim: HttpServer) -> None:
    async with pve_client(https_sim.url, verify_tls=False) as client:
        assert (await client.version())["release"] == "8.4"


async def test_wrong_fingerprint_fails_before_the_token_is_sent(cert: ClusterCert) -> None:
    """A raw TLS server records every byte: with a wrong pin it must receive none."""
    received = bytearray()
    handshakes = 0

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal handshakes
        handshakes += 1
        try:
            while chunk := await reader.read(4096):
                received.extend(chunk)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0, ssl=cert.server_context())
    port = server.sockets[0].getsockname()[1]
    wrong = "AB:" * 31 + "CD"
    try:
        async with pve_client(f"https://127.0.0.1:{port}", fingerprint=wrong) as client:
            with pytest.raises(ProxmoxTLSError) as err:
                await client.nodes()
        message = str(err.value)
        assert "does not match the pinned SHA-256 fingerprint" in message
        assert cert.fingerprint in message  # what was seen, to help the operator
        assert normalize_fingerprint(wrong) in message
        for _ in range(50):  # let the server notice the close
            if handshakes:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert handshakes == 1  # the TLS handshake did happen ...
        assert bytes(received) == b""  # ... but no request, so no Authorization header
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "value",
    [
        "ab" * 32,
        "AB" * 32,
        ":".join(["ab"] * 32),
        " " + ":".join(["AB"] * 32) + " ",
    ],
)
def test_fingerprint_forms(value: str) -> None:
    assert normalize_fingerprint(value) == ":".join(["AB"] * 32)


@pytest.mark.parametrize("value", ["", "ab" * 31, "zz" * 32, "ab" * 33])
def test_bad_fingerprints(value: str) -> None:
    with pytest.raises(ValueError, match="SHA-256 fingerprint"):
        normalize_fingerprint(value)
