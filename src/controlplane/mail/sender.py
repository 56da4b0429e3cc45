"""Deliver the outbox: claim due mails (SKIP LOCKED, so replicas share the work), send each
over SMTP with aiosmtplib, mark it sent, or try again later with backoff.

A mail is marked sent only after the server accepted it; a sender killed in between
leaves the claim to expire and the mail is sent again (at least once, never lost). After
`MAX_ATTEMPTS` the mail is marked failed and logged for the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from controlplane.config import Settings
from controlplane.db import Database
from controlplane.mail.outbox import Q

log = logging.getLogger(__name__)
LEASE_S = 60.0  # a claimed mail is someone's for this long
MAX_ATTEMPTS = 10
BATCH = 20
PRUNE_EVERY_S = 3600.0  # expired verification/reset tokens are deleted about hourly


def backoff(attempts: int) -> float:
    return float(min(5 * 2 ** (attempts - 1), 3600))


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: when the server offers it

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        implicit = parts.scheme == "smtps"
        mode = parse_qs(parts.query).get("starttls", ["auto"])[-1]
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            start_tls=False if implicit or mode == "off" else (True if mode == "require" else None),
        )


def build_message(settings: Settings, row: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from or ""
    message["To"] = row["recipient"]
    message["Subject"] = row["subject"]
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=f"outbox-{row['id']}")
    message.set_content(row["body"])
    return message


class MailSender:
    def __init__(self, db: Database, settings: Settings, *, poll_s: float = 2.0) -> None:
        assert settings.smtp_url is not None
        self.db = db
        self.settings = settings
        self.target = SmtpTarget.from_url(settings.smtp_url.get_secret_value())
        self.poll_s = poll_s
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="mail-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def prune_tokens(self) -> None:
        """Delete verification and reset tokens that expired more than a day ago."""
        await self.db.execute(Q["token_prune"])

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        pruned_at = -PRUNE_EVERY_S
        while True:
            try:
                while await self.send_due():
                    pass
                if loop.time() - pruned_at >= PRUNE_EVERY_S:
                    await self.prune_tokens()
                    pruned_at = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mail round failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self.wake.wait()
            self.wake.clear()

    async def send_due(self) -> int:
        """Claim and send one batch; the number of mails claimed."""
        rows = await self.db.fetch_all(Q["outbox_claim"], {"lease": LEASE_S, "limit": BATCH})
        for row in rows:
            await self._send(row)
        return len(rows)

    async def _send(self, row: dict[str, Any]) -> None:
        t = self.target
        try:
            await aiosmtplib.send(
                build_message(self.settings, row),
                hostname=t.host,
                port=t.port,
                username=t.username,
                password=t.password,
                use_tls=t.use_tls,
                start_tls=t.start_tls,
                timeout=30,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            if row["attempts"] >= MAX_ATTEMPTS:
                log.error("mail failed for good", extra={"mail": row["id"], "error": error})
                await self.db.execute(Q["outbox_failed"], {"id": row["id"], "error": error})
            else:
                delay = backoff(row["attempts"])
                log.warning("mail will be retried",
                            extra={"mail": row["id"], "error": error, "delay": delay})  # fmt: skip
                await self.db.execute(
                    Q["outbox_retry"], {"id": row["id"], "delay": delay, "error": error}
                )
            return
        await self.db.execute(Q["outbox_sent"], {"id": row["id"]})
        log.info("mail sent", extra={"mail": row["id"], "kind": row["kind"]})
