"""A local SMTP server that keeps mail instead of delivering it (for the demo).

Every message it accepts is written to `<folder>/<time>-<n>.eml` and announced on stdout
with its recipient, subject and the links it contains, so a verification or reset link
can be followed without a real mailbox.
"""

from __future__ import annotations

import asyncio
import email
import itertools
import re
import time
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_LINK = re.compile(r"https?://\S+")


def _text(message: Message) -> str:
    payload = message.get_payload(decode=True)
    return payload.decode(errors="replace") if isinstance(payload, bytes) else ""


class MailSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._numbers)}.eml"
        path.write_bytes(content)
        message = email.message_from_bytes(content)
        links = " ".join(_LINK.findall(_text(message)))
        print(f"mail to {message['To']}: {message['Subject']} ({path}) {links}", flush=True)
        return "250 OK"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="demo-mail-sink"), host, port
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> Any:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
