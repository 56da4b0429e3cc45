"""Connection guards of `serve` against a real process on loopback (controlplane.web.server).

Request headers above `MAX_HEADER_BYTES` (in total) or `MAX_HEADER_COUNT` get a 431 and
the connection is closed, so a client cannot make the server buffer megabytes of headers;
a request body that has not fully arrived `BODY_TIMEOUT_S` after its headers gets a 408
and the connection is closed. Run with `-s` to see the memory figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import psutil
import pytest

from tests.chaos.harness import ServeProcess
from tests.conftest import create_database, drop_database

BODY_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def module_database(pg_admin_url: str, template_url: str) -> Iterator[str]:
    url = create_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture(scope="module")
def serve(module_database: str) -> Iterator[ServeProcess]:
    proc = ServeProcess(
        module_database,
        env={"RUN_WORKERS": "false", "BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)},
    )
    proc.start()
    try:
        asyncio.run(proc.wait_healthy())
        yield proc
    finally:
        proc.stop()


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def exchange(port: int, raw: bytes) -> bytes:
    """Send `raw`, then read until the server closes the connection."""
    async with connect(port) as (reader, writer):
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 15)


def request(*headers: str, target: str = "/healthz") -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: localhost", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> dict:  # type: ignore[type-arg]
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


async def test_headers_below_the_limits_are_served(serve: ServeProcess) -> None:
    # 60 KiB in six headers, and 100 headers in all (Host and Connection included).
    big = [f"X-Big-{i}: {'a' * 10_000}" for i in range(6)]
    assert status_of(await exchange(serve.port, request(*big))) == 200
    many = [f"X-H-{i}: v" for i in range(98)]
    assert status_of(await exchange(serve.port, request(*many))) == 200


async def test_oversized_header_gets_431_and_the_connection_closes(serve: ServeProcess) -> None:
    response = await exchange(serve.port, request(f"X-Big: {'a' * 100_000}"))
    assert status_of(response) == 431
    error = body_of(response)["error"]
    assert error["code"] == "headers_too_large"
    assert "65536 bytes" in error["message"]
    assert b"connection: close" in response.lower()


async def test_headers_above_the_limit_in_total_get_431(serve: ServeProcess) -> None:
    # No single header is large; together they are (and so is a long URL).
    response = await exchange(serve.port, request(*(f"X-P-{i}: {'b' * 4000}" for i in range(20))))
    assert status_of(response) == 431
    response = await exchange(serve.port, request(target="/healthz?q=" + "c" * 70_000))
    assert status_of(response) == 431


async def test_too_many_headers_get_431(serve: ServeProcess) -> None:
    response = await exchange(serve.port, request(*(f"X-H-{i}: v" for i in range(99))))
    assert status_of(response) == 431
    error = body_of(response)["error"]
    assert error["code"] == "too_many_headers"
    assert "100 headers" in error["message"]


async def test_the_limit_applies_to_each_request_of_a_keep_alive_connection(
    serve: ServeProcess,
) -> None:
    # Two requests of 40 KiB of headers each on one connection: each is under the limit.
    async with connect(serve.port) as (reader, writer):
        for _ in range(2):
            head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + "d" * 40_000
            writer.write((head + "\r\n\r\n").encode())
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
            assert status_line.startswith(b"HTTP/1.1 200"), status_line
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)


async def test_unfinished_40_mb_headers_are_cut_off(serve: ServeProcess) -> None:
    """Ten connections each try to send 40 MB of one header that never ends."""
    total = 40 * 2**20
    chunk = b"e" * 2**16
    process = psutil.Process(serve.proc.pid)  # type: ignore[union-attr]
    rss_before = process.memory_info().rss / 2**20

    async def flood() -> int:
        sent = 0
        async with connect(serve.port) as (_, writer):
            try:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Flood: ")
                while sent < total:
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
            except OSError:  # reset or broken pipe: the server gave up on us
                pass
        return sent

    sent = await asyncio.gather(*(flood() for _ in range(10)))
    rss_peak = process.memory_info().rss / 2**20
    print(
        "\n40 MB headers:",
        json.dumps(
            {
                "connections": 10,
                "mb_accepted_per_connection": [round(s / 2**20, 1) for s in sent],
                "rss_before_mb": round(rss_before, 1),
                "rss_after_mb": round(rss_peak, 1),
            }
        ),
    )
    # Loopback socket buffers take a few MB before the server's close reaches us.
    assert max(sent) < 16 * 2**20, "the server read far beyond the header limit"
    assert rss_peak - rss_before < 64, "the server buffered the oversized headers"
    # And the server still answers.
    assert status_of(await exchange(serve.port, request())) == 200


async def dribble_body(
    port: int, *, seconds: float, target: str = "/api/v1/tenants"
) -> tuple[bytes, bool]:
    """POST a 100-byte body one byte at a time over `seconds`; return what the server sent
    until it closed and whether it closed before the body was complete."""
    async with connect(port) as (reader, writer):
        writer.write(
            f"POST {target} HTTP/1.1\r\nHost: localhost\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )

        async def feed() -> None:
            with contextlib.suppress(OSError):
                for _ in range(100):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(seconds / 100)

        feeder = asyncio.create_task(feed())
        try:
            response = await asyncio.wait_for(reader.read(), seconds + 10)
            return response, not feeder.done()
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder


async def test_dribbled_bodies_get_408_at_the_deadline(serve: ServeProcess) -> None:
    """50 connections feed their bodies one byte every 0.3 s (30 s for the whole body)."""
    started = asyncio.get_running_loop().time()
    results = await asyncio.gather(*(dribble_body(serve.port, seconds=30) for _ in range(50)))
    elapsed = asyncio.get_running_loop().time() - started
    print(
        "\nslow bodies:",
        json.dumps(
            {"connections": 50, "body_timeout_s": BODY_TIMEOUT_S, "all_closed_after_s": elapsed}
        ),
    )
    for response, early in results:
        assert early, "the connection lasted until the body was complete"
        assert status_of(response) == 408
        error = body_of(response)["error"]
        assert error["code"] == "body_timeout"
        assert f"{BODY_TIMEOUT_S:g} s" in error["message"]
    assert status_of(await exchange(serve.port, request())) == 200


async def test_a_request_answered_early_is_not_answered_twice(serve: ServeProcess) -> None:
    # /healthz refuses POST without reading the body; the dribbled rest is cut off at the
    # deadline by closing the connection, with no second answer.
    response, early = await dribble_body(serve.port, seconds=30, target="/healthz")
    assert early
    assert status_of(response) == 405
    assert response.count(b"HTTP/1.1 ") == 1, response


async def test_the_body_deadline_ends_with_the_body(serve: ServeProcess) -> None:
    # A complete body, then an idle keep-alive connection past the body deadline: the
    # next request is still served.
    async with connect(serve.port) as (reader, writer):
        writer.write(b"POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert first.startswith(b"HTTP/1.1 405"), first
        length = next(
            int(line.split(b":")[1])
            for line in first.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        await asyncio.sleep(BODY_TIMEOUT_S * 1.5)
        writer.write(request())
        assert status_of(await asyncio.wait_for(reader.read(), 10)) == 200


@pytest.mark.slow
async def test_slow_bodies_at_the_default_deadline(module_database: str) -> None:
    """The reported case: 200 connections feed their bodies one byte every 3-5 s, against
    the default BODY_TIMEOUT_S (20 s). Prints when the server closed them."""
    import random
    import time

    proc = ServeProcess(module_database, env={"RUN_WORKERS": "false"})
    proc.start()
    try:
        await proc.wait_healthy()
        rng = random.Random(5)
        started = time.monotonic()

        async def one() -> tuple[float, bytes]:
            async with connect(proc.port) as (reader, writer):
                writer.write(
                    b"POST /api/v1/tenants HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                )

                async def feed() -> None:
                    with contextlib.suppress(OSError):
                        for _ in range(100):
                            writer.write(b" ")
                            await writer.drain()
                            await asyncio.sleep(rng.uniform(3, 5))

                feeder = asyncio.create_task(feed())
                try:
                    answer = await asyncio.wait_for(reader.read(), 60)
                finally:
                    feeder.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await feeder
                return time.monotonic() - started, answer

        results = await asyncio.gather(*(one() for _ in range(200)))
    finally:
        proc.stop()
    closed_after = sorted(t for t, _ in results)
    print(
        "\nslow bodies at the default deadline:",
        json.dumps(
            {
                "connections": 200,
                "first_closed_s": round(closed_after[0], 1),
                "last_closed_s": round(closed_after[-1], 1),
                "answered_408": sum(status_of(a) == 408 for _, a in results),
            }
        ),
    )
    # Without the deadline the bodies would take 300-500 s: the read above would time out.
    assert all(status_of(a) == 408 for _, a in results)
