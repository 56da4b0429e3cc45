"""The demo's SMTP sink keeps each mail as a file and prints its links."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from controlplane.mail.sink import MailSink


async def test_the_sink_writes_and_announces_mail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = MailSink(tmp_path / "mail")
    port = await sink.start()
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@b.test", "ada@b.test", "Hi"
        message.set_content("open http://localhost:8080/verify-email?token=abc please")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port, start_tls=False)
    finally:
        await sink.close()
    [saved] = list((tmp_path / "mail").glob("*.eml"))
    assert b"Subject: Hi" in saved.read_bytes()
    out = capsys.readouterr().out
    assert "mail to ada@b.test: Hi" in out and str(saved) in out
    assert "http://localhost:8080/verify-email?token=abc" in out
