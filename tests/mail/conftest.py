"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and an app that
sends to it."""

from __future__ import annotations

import asyncio
import email
import re
from collections.abc import AsyncIterator
from email.message import Message

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from controlplane.config import Settings
from tests.auth.conftest import user_settings
from tests.users.conftest import cluster  # noqa: F401 (a fixture)


class Sink:
    """aiosmtpd handler: keeps every message; `refuse` answers the next ones with 451."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse = 0
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        assert isinstance(envelope.content, bytes)
        self.messages.append(email.message_from_bytes(envelope.content))
        self.arrived.set()
        return "250 OK"

    async def wait(self, count: int, timeout: float = 15.0) -> list[Message]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.messages


def link_token(message: Message, path: str) -> str:
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    match = re.search(rf"http://localhost:8080/{path}\?token=([A-Za-z0-9_-]+)", body.decode())
    assert match, body
    return match.group(1)


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Sink, int]]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="mx.test"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield sink, port
    server.close()
    await server.wait_closed()


@pytest.fixture
def settings(database_url: str, smtp: tuple[Sink, int]) -> Settings:
    return user_settings(
        database_url,
        smtp_url=f"smtp://127.0.0.1:{smtp[1]}?starttls=off",
        mail_from="Control plane <noreply@example.test>",
    )
