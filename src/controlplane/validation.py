"""Field types shared by the API's request bodies, each with a clear 422 message.

Shapes checked in Python go through `full_match`: `re.match` with a `$` also accepts a
value that ends in a newline (`"admin\n"`), `re.fullmatch` never does. (`pattern=` in a
pydantic `Field` is matched by pydantic-core's Rust engine, where `$` is the end of the
text, so those are safe as written.)
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_FINGERPRINT = re.compile(r"^(?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$")
_HTTP_BASE_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(?::\d{1,5})?/?")


def full_match(pattern: re.Pattern[str] | str, value: str) -> bool:
    """Whether `pattern` matches all of `value`, a trailing newline included."""
    return re.fullmatch(pattern, value) is not None


# Subdomains a tenant can never take: they belong to the operator.
RESERVED_SUBDOMAINS = frozenset(
    {
        "www",
        "api",
        "admin",
        "app",
        "mail",
        "smtp",
        "imap",
        "pop",
        "ftp",
        "ns1",
        "ns2",
        "dns",
        "docs",
        "status",
        "static",
        "assets",
        "cdn",
        "auth",
        "login",
        "sso",
        "billing",
        "dashboard",
        "panel",
        "root",
        "localhost",
        "wireguard",
        "vpn",
        "proxmox",
        "pve",
        "support",
        "help",
    }
)


def _dns_label(value: str) -> str:
    if not full_match(_DNS_LABEL, value):
        raise ValueError(
            "must be a DNS label: 1-63 lower-case letters, digits or hyphens, "
            "not starting or ending with a hyphen"
        )
    return value


def _subdomain(value: str) -> str:
    _dns_label(value)
    if value in RESERVED_SUBDOMAINS:
        raise ValueError(f"{value!r} is reserved")
    if value[2:4] == "--":
        # "xn--" is punycode: it would let a tenant show up as a look-alike of another's
        # name; RFC 5891 reserves every "??--" prefix for such encodings.
        raise ValueError("must not have '--' in the third and fourth characters")
    return value


def _http_url(value: str) -> str:
    if not full_match(_HTTP_BASE_URL, value):
        raise ValueError("must be an http(s) base URL such as https://pve1.example:8006")
    return value.rstrip("/")


def normalise_fingerprint(value: str | None) -> str | None:
    if value is None:
        return None
    raw = value.replace(":", "").upper()
    return ":".join(raw[i : i + 2] for i in range(0, 64, 2))


DnsName = Annotated[str, Field(min_length=1, max_length=63), AfterValidator(_dns_label)]
Subdomain = Annotated[str, Field(min_length=1, max_length=63), AfterValidator(_subdomain)]
HttpUrl = Annotated[str, Field(min_length=8, max_length=255), AfterValidator(_http_url)]
PveNodeName = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
]
TokenId = Annotated[
    str,
    Field(
        min_length=3,
        max_length=128,
        pattern=r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]*$",
        description="user@realm!tokenname",
    ),
]
Fingerprint = Annotated[str, Field(pattern=_FINGERPRINT.pattern, description="SHA-256, AA:BB:..")]


_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")


def _not_a_timestamp(value: object) -> object:
    # Lax validation (query strings) would read "1700000000" or "-2e-309" as Unix time.
    if isinstance(value, str | int | float) and full_match(_NUMBER, str(value)):
        raise ValueError("must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z")
    return value


# A date-time query parameter: ISO 8601 only, as the OpenAPI says (format: date-time).
IsoDateTime = Annotated[datetime, BeforeValidator(_not_a_timestamp)]


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refused here, the field named, not a 500 later.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters")
    return value


# Free text that is stored: anything printable or not, but no NUL.
Storable = AfterValidator(_storable)


def _single_line(value: object) -> object:
    # Checked before any stripping: a name, host or address is one line, and a control
    # character (a newline above all) in one is a mistake or an injection attempt.
    if isinstance(value, str) and any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must be one line without control characters (such as a line break)")
    return value


# One line of text (NUL and every other control character refused): names, hosts.
SingleLine = BeforeValidator(_single_line)
