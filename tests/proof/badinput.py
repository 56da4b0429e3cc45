"""Bad input for the bad-input suite: hostile values, bodies and headers, and a checksum of
the database to prove that a refused request changed nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import sql

# Strings that must never reach PostgreSQL or a header: NUL (PostgreSQL text refuses it), a
# lone surrogate (not encodable as UTF-8), bidi overrides and zero-width characters.
POISON = {
    "nul": "ab\u0000cd",
    "lone surrogate": "ab\ud800cd",
}
# Strings a validated field (pattern, format, enum) must refuse; free text may keep them.
HOSTILE = {
    **POISON,
    "sql quote": "x'; DROP TABLE tenants; --",
    "sql or": "' OR '1'='1",
    "sql sleep": "1; SELECT pg_sleep(10)--",
    "cyrillic homoglyph": "\u0430cme",  # Cyrillic a: looks like "acme"
    "zero width": "ac\u200bme",
    "rtl override": "\u202eemca",
    "emoji": "\U0001f4a5",
    "fullwidth": "\uff41\uff43\uff4d\uff45",
    "crlf": "a\r\nX-Injected: 1",
    "traversal": "../../etc/passwd",
    "long": "x" * 100_000,
    "empty": "",
    "spaces": "   ",
}
HUGE_INTEGERS = {
    "2**64": 2**64,
    "-2**63-1": -(2**63) - 1,
    "10**100": 10**100,
    "negative": -1,
    "float": 1.5,
    "string": "12",
    "bool": True,
}
# Raw JSON documents that no body schema accepts (sent as application/json).
BROKEN_JSON = {
    "truncated": b'{"name": ',
    "invalid utf-8": b'{"name": "\xff\xfe\xfa"}',
    "nan": b'{"name": NaN}',
    "infinity": b'{"name": -Infinity}',
    "1e400": b'{"name": 1e400}',
    "5000 digits": b'{"name": ' + b"9" * 5000 + b"}",
    "deep nesting": b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "null": b"null",
    "array": b"[]",
    "number": b"42",
    "string": b'"x"',
    "trailing garbage": b'{"name": "x"} {"name": "y"}',
}
# (Python's JSON parser reads UTF-16/32 and skips a BOM, RFC 8259 allows the latter: both
# are left out, as is a charset parameter, which FastAPI ignores.)
WRONG_TYPES = ["text/plain", "application/xml", "application/x-www-form-urlencoded",
               "multipart/form-data; boundary=xyz", "image/png"]  # fmt: skip
# Header values an attacker controls: the answer must not echo them into its own headers.
HEADER_ATTACKS: list[dict[str, str | bytes]] = [
    {"X-Request-ID": "abc\r\nSet-Cookie: pwned=1"},
    {"X-Request-ID": "x" * 10_000},
    {"X-Forwarded-For": "1.2.3.4\r\nX-Injected: 1"},
    {"X-Forwarded-For": "' OR 1=1 --, ::::, 999.1.1.1"},
    {"Host": "evil.example\r\nX-Injected: 1"},
    {"Origin": "https://evil.example\r\nX-Injected: 1"},
    {"Cookie": "cp_admin_session=" + "x" * 5000},
    {"Accept": "text/html\r\nX-Injected: 1"},
    {"HX-Request": "true\r\nHX-Redirect: https://evil.example"},
    {"Authorization": b"Bearer \xe9\xe8" + b"A" * 8000},  # Latin-1, not ASCII
    {"X-CSRF-Token": b"\xff\xfe"},
]


@dataclass(frozen=True)
class Variant:
    name: str
    content: bytes | None = None
    json: Any = None
    data: dict[str, str] | None = None
    headers: dict[str, Any] | None = None


# Inputs that are compared or hashed, never stored as text: any characters will do there.
COMPARED = {"password", "current_password", "new_password", "registration_token",
            "refresh_token", "token", "setup_token", "ticket"}  # fmt: skip


# Text that may span lines: a trailing newline is part of the value there.
# (`events` of the dashboard's webhook form: one per line, a last newline ends a line.)
MULTILINE = {"notes", "ssh_private_key", "ssh_host_key", "events"}
# Valid values of string fields the base bodies leave out, so that a trailing newline is
# what is wrong with them (a regex with `$` also matches before a final newline).
SAMPLES = {
    "api_url": "https://pve9.example:8006",
    "pve_node": "pve2",
    "token_id": "root@pam!other",
    "token_secret": "an-api-token-secret",
    "tls_fingerprint": ":".join(["AB"] * 32),
    "ssh_host": "10.0.0.9",
    "ssh_user": "root",
    "slug": "web-two",
    "health_path": "/health",
    "project": "web",
    "project_id": "6f1c2e1a-0b1c-4c3d-9e8f-0a1b2c3d4e5f",
    "node_id": "6f1c2e1a-0b1c-4c3d-9e8f-0a1b2c3d4e5f",
    "owner_user_id": "6f1c2e1a-0b1c-4c3d-9e8f-0a1b2c3d4e5f",
    "tenant_id": "6f1c2e1a-0b1c-4c3d-9e8f-0a1b2c3d4e5f",
    "user_id": "6f1c2e1a-0b1c-4c3d-9e8f-0a1b2c3d4e5f",
    "public_key": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    "notes": "desk",
}
_NUMERIC = re.compile(r"[-+]?\d+(?:\.\d*)?")


def trailing_newline(field: str, base: dict[str, Any]) -> str | None:
    """The field's valid value (from the base body, else a sample) with a newline after it,
    or None for a field where that is no fault (free multi-line text, compared secrets)."""
    if field in MULTILINE or field in COMPARED:
        return None
    value = base.get(field, SAMPLES.get(field))
    if not isinstance(value, str) or _NUMERIC.fullmatch(value):
        return None  # numbers are numbers however they are spaced
    return value + "\n"


def json_variants(base: dict[str, Any], properties: dict[str, Any]) -> Iterator[Variant]:
    """Bodies a JSON route must refuse: broken documents, wrong content types, and the valid
    base body with one field spoiled at a time."""
    for name, raw in BROKEN_JSON.items():
        yield Variant(f"json {name}", content=raw, headers={"Content-Type": "application/json"})
    encoded = json.dumps(base).encode()
    for media in WRONG_TYPES:
        yield Variant(f"type {media}", content=encoded, headers={"Content-Type": media})
    yield Variant("unknown field", json={**base, "is_admin": True})
    for field, schema in properties.items():
        types = _types(schema)
        for label, value in _spoilers(schema, types):
            if field in COMPARED and label in POISON:
                continue
            yield Variant(f"{field}={label}", json={**base, field: value})
        if "string" in types and (spoiled := trailing_newline(field, base)) is not None:
            yield Variant(f"{field}=trailing newline", json={**base, field: spoiled})


def _types(schema: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    if "type" in schema:
        found.add(schema["type"])
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        found |= _types(option)
    return found


def constrained(schema: dict[str, Any]) -> bool:
    """A string field with a shape (pattern, format, enum) rather than free text."""
    text = json.dumps(schema)
    return any(key in text for key in ('"pattern"', '"format"', '"enum"', '"const"'))


def _spoilers(schema: dict[str, Any], types: set[str]) -> Iterator[tuple[str, Any]]:
    if "string" in types:
        hostile = HOSTILE if constrained(schema) else {**POISON, "long": HOSTILE["long"]}
        yield from hostile.items()
        if "integer" not in types:
            yield "number", 12345
        yield "object", {"$ne": None}
    if "integer" in types or "number" in types:
        # 1.5 spoils an integer, but is a valid number (a float field such as an overcommit).
        integer = "integer" in types
        yield from ((k, v) for k, v in HUGE_INTEGERS.items() if integer or k != "float")
    if "boolean" in types:
        yield "bool as string", "true"
        yield "bool as number", 1
    if "array" in types:
        yield "array of objects", [{"a": 1}] * 3
        yield "huge array", ["x"] * 50_000
    if "null" not in types:
        yield "null", None


FORM_VALUES: dict[str, bytes] = {
    "invalid utf-8": b"%FF%FE%FA",
    "nul": b"a%00b",
    "lone surrogate": b"%ED%A0%80",
    "5000 digits": b"9" * 5000,
    "long": b"x" * 200_000,
    # Valid text, so refused only where the field has a shape (a slug, a subdomain ...):
    "raw bytes": b"\xff\xfe",  # not url-encoded: Starlette reads them as Latin-1
    "sql": b"x%27%3B+DROP+TABLE+tenants%3B+--",
    "cyrillic homoglyph": "\u0430cme".encode(),
    "zero width": b"ac%E2%80%8Bme",
    "crlf": b"a%0D%0AX-Injected%3A+1",
}
FREE_TEXT_OK = {"raw bytes", "sql", "cyrillic homoglyph", "zero width", "crlf"}


def form_variants(
    base: dict[str, str], *, free: tuple[str, ...] = (), partial: bool = False
) -> Iterator[Variant]:
    """Form posts a dashboard route must refuse. `free` fields take any text (the valid
    look-alikes are skipped there); a `partial` form (an edit) may leave fields out, so an
    empty submission is a valid no-op there and not sent."""
    form = "application/x-www-form-urlencoded"
    raw = "&".join(f"{k}={v}" for k, v in base.items())
    for field in base:
        others = "&".join(f"{k}={v}" for k, v in base.items() if k != field)
        for label, value in FORM_VALUES.items():
            if field in free and (label in FREE_TEXT_OK or field.startswith("is_")):
                continue
            body = (others + "&" if others else "").encode() + field.encode() + b"=" + value
            yield Variant(f"{field}={label}", content=body, headers={"Content-Type": form})
        spoiled = None if field.startswith("is_") else trailing_newline(field, base)
        if spoiled is not None:  # free text too: names are one line
            body = (others + "&" if others else "").encode() + field.encode() + b"="
            body += spoiled.replace("\n", "%0A").encode()
            yield Variant(f"{field}=trailing newline", content=body, headers={"Content-Type": form})
    if partial:
        return
    yield Variant("json body", json=base)
    yield Variant("text/plain", content=raw.encode(), headers={"Content-Type": "text/plain"})
    yield Variant(
        "multipart file",
        content=(
            b'--xyz\r\nContent-Disposition: form-data; name="name"; filename="a.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n\xff\xfe\r\n--xyz--\r\n"
        ),
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    yield Variant(
        "broken multipart",
        content=b'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx',
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )


def spoiled_form(base: dict[str, str]) -> bytes:
    """The base form with its first field far too long: refused whatever the headers say."""
    first, *_ = base
    rest = "&".join(f"{k}={v}" for k, v in base.items() if k != first)
    return f"{rest}&{first}=".encode() + b"x" * 200_000


PATH_ATTACKS = {
    "sql": "' OR 1=1 --",
    "nul": "%00",
    "traversal": "..%2F..%2Fetc%2Fpasswd",
    "emoji": "%F0%9F%92%A5",
    "invalid utf-8": "%FF%FE",
    "400 digits": "9" * 400,
    "negative": "-1",
    "arabic digits": "%D9%A1%D9%A2%D9%A3",
    "uuid with unicode": "6f1c2e1a-0b1c-4c3d-9e8f-0a1b2c3d4e5\u0661",
}


# -- the database before and after ---------------------------------------------------------

# Columns a request may touch without changing anything that matters: a dashboard request
# records when its session was last seen.
VOLATILE = {"admin_sessions": ["last_seen_at"]}


async def checksum(db: Any) -> dict[str, tuple[int, str]]:
    """Row count and a hash of every row of every table (volatile columns left out)."""
    tables = await db.fetch_all(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    parts = [
        sql.SQL(
            "SELECT {name} AS t, count(*) AS n,"
            " coalesce(md5(string_agg(r::text, ',' ORDER BY r::text)), '') AS h"
            " FROM (SELECT to_jsonb(x) - {drop}::text[] AS r FROM {table} x) s"
        ).format(
            name=sql.Literal(row["tablename"]),
            drop=sql.Literal(VOLATILE.get(row["tablename"], [])),
            table=sql.Identifier(row["tablename"]),
        )
        for row in tables
    ]
    rows = await db.fetch_all(sql.SQL(" UNION ALL ").join(parts))
    return {r["t"]: (r["n"], r["h"]) for r in rows}


def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    return sorted(
        f"{t}: {before.get(t, (0, ''))[0]} -> {after.get(t, (0, ''))[0]} rows"
        for t in set(before) | set(after)
        if before.get(t) != after.get(t)
    )
