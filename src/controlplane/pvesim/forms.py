"""Request parameter extraction with pve-http-server's naive form decoder.

Faithful to ``decode_urlencoded`` (docs/proxmox-reference.md section 1): pairs are split on
``&`` and ``;``; each pair is split on ``=`` with Perl's implicit limit, so ``k=a=b`` gives ``a``;
``+`` and ``%XX`` are decoded afterwards; a repeated key becomes a list. JSON bodies are
accepted as well, and query-string parameters override body keys.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PERCENT = re.compile(rb"%([0-9a-fA-F]{2})")

ParamValue = str | list[str]


def _unescape(text: str) -> str:
    raw = text.replace("+", " ").encode("latin-1", "surrogateescape")
    raw = _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
    return raw.decode("utf-8", "replace")


def decode_urlencoded(data: str) -> dict[str, ParamValue]:
    """PVE's decoder, bug for bug: a raw ``=`` cuts the value, a raw ``;`` splits pairs."""
    result: dict[str, ParamValue] = {}
    if not data:
        return result
    for pair in re.split(r"[&;]", data):
        # Perl: my ($k, $v) = split(/=/, $kv); -- an implicit limit of 3 fields, and
        # only the first two are kept, so everything after a second '=' is lost.
        parts = pair.split("=", 2)
        key = _unescape(parts[0])
        value = _unescape(parts[1]) if len(parts) > 1 else ""
        old = result.get(key)
        if old is None:
            result[key] = value
        elif isinstance(old, list):
            old.append(value)
        else:
            result[key] = [old, value]
    return result


def extract_params(method: str, query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """The parameters a PVE handler sees, before validation."""
    params: dict[str, Any] = {}
    if method in ("POST", "PUT") and body:
        if content_type.split(";")[0].strip().lower() == "application/json":
            decoded = json.loads(body)
            if isinstance(decoded, dict):
                params.update(
                    {
                        k: v if isinstance(v, str | list) else _json_scalar(v)
                        for k, v in decoded.items()
                    }
                )
        else:
            params.update(decode_urlencoded(body.decode("latin-1")))
    params.update(decode_urlencoded(query))
    return params


def _json_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
