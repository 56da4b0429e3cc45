"""Password hashing (Argon2id) and the password policy.

Hashing is CPU- and memory-heavy by design, so it runs in a worker thread and at most a few
hashes run at once per process (each takes ARGON2_MEMORY_KIB of memory). The production
defaults are RFC 9106's second recommended option (t=3, 64 MiB, p=4), above OWASP's
minimum; tests turn them down through the same settings.

Passwords are NFKC-normalised before hashing and before the policy looks at them, so the
same password typed on two keyboards (composed or decomposed accents) is the same password.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from controlplane.config import Settings
from controlplane.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 128
# Request bodies may carry at most this much; the policy names the real bound.
MAX_INPUT = 1024


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


class Hasher:
    """Argon2id with the configured cost, off the event loop, bounded in concurrency."""

    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        max_concurrent: int | None = None,
    ) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrent or max(2, os.cpu_count() or 2))
        self._dummy: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Hasher:
        return cls(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._ph.hash, normalise(password))

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True when `password` matches; False for a mismatch or an unreadable hash."""

        def check() -> bool:
            try:
                return self._ph.verify(stored_hash, normalise(password))
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        async with self._slots:
            return await asyncio.to_thread(check)

    async def verify_dummy(self, password: str) -> None:
        """Spend the same time as a real verification, for e-mails that have no account."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(24))
        await self.verify(self._dummy, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._ph.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("controlplane.auth").joinpath("common_passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_UNLEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "3": "e", "$": "s", "5": "s"})


def _cores(password: str) -> set[str]:
    """The forms of a password compared with the common list."""
    lowered = password.lower()
    stripped = _EDGES.sub("", lowered)
    return {lowered, lowered.translate(_UNLEET), stripped, stripped.translate(_UNLEET)} - {""}


def check_password(password: str, *, email: str, field: str = "password") -> None:
    """Raise a 422 naming `field` when the password is too weak."""
    password = normalise(password)

    def refuse(message: str) -> None:
        raise Invalid(f"{field} {message}", field=field)

    if len(password) < MIN_LENGTH:
        refuse(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        refuse(f"must be at most {MAX_LENGTH} characters long")
    if len(set(password)) < 4:
        refuse("uses too few different characters")
    lowered = password.lower()
    local = email.split("@", 1)[0]
    if lowered in (email, local) or local in _cores(password):
        refuse("must not be your e-mail address")
    if _cores(password) & common_passwords():
        refuse("is one of the most common passwords; choose a less guessable one")
