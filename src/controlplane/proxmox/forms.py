"""Encoding of request parameters the way Proxmox's naive form decoder needs them.

pve-http-server splits a form body on ``&`` *and* ``;`` and each pair on every ``=``, so a raw
``=`` cuts a value (``net0=name=eth0,...`` arrives as ``name``) and a raw ``;`` starts a new
pair (``tags=a;b``). Every key and value is therefore percent-encoded with nothing left
"safe" (docs/proxmox-reference.md section 1). Booleans go as ``0``/``1``; ``None`` means "not sent".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote

# Keys whose list values Proxmox expects joined with a particular separator.
_LIST_SEPARATORS = {"tags": ";", "delete": ","}


def _format_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, Iterable):
        return _LIST_SEPARATORS.get(key, ",").join(str(v) for v in value)
    raise TypeError(f"cannot send {key}={value!r} to Proxmox")


def encode_params(params: Mapping[str, object] | None) -> str:
    """``application/x-www-form-urlencoded`` text with every reserved character escaped."""
    if not params:
        return ""
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        pairs.append(f"{quote(key, safe='')}={quote(_format_value(key, value), safe='')}")
    return "&".join(pairs)


def quote_path(segment: object) -> str:
    """One path segment (node name, vmid, UPID), percent-encoded."""
    return quote(str(segment), safe="")
