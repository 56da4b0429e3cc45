"""Lenient reading of Proxmox answers, whose JSON types vary by version and endpoint.

Perl emits a number as a JSON string once it was used as a string: ``/cluster/nextid``
returns ``"100"``, PVE < 8.2 lists ``"vmid":"106"``, PVE 6 returned ``pid``/``disk`` as
strings and ``lock``/``template`` as ``""`` (docs/proxmox-reference.md section 3.5). These helpers
accept int-or-numeric-string for ids and counters and ``0/1/""/bool`` for flags.
"""

from __future__ import annotations

import contextlib
from typing import Any

# Fields of guest entries that are integers whatever the server version sent.
_INT_FIELDS = frozenset(
    {
        "vmid", "pid", "disk", "maxdisk", "mem", "maxmem", "swap", "maxswap", "uptime",
        "netin", "netout", "diskread", "diskwrite",
    }
)  # fmt: skip
_FLAG_FIELDS = frozenset({"template"})


def as_int(value: Any) -> int:
    """An int from an int or a numeric string (``"100"``, ``" 7 "``, ``"12.0"``)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = float(text)
            if number.is_integer():
                return int(number)
    raise ValueError(f"expected an integer, got {value!r}")


def as_flag(value: Any) -> bool:
    """``0/1``, ``"0"/"1"``, ``""``, ``None`` and JSON booleans as a bool."""
    if value is None or value == "":
        return False
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def normalize_guest(entry: dict[str, Any]) -> dict[str, Any]:
    """A guest entry (lxc list, status/current, cluster resources) with uniform types.

    Integer fields become ints, ``template`` becomes 0/1, and an empty ``lock`` is dropped
    (PVE >= 7 omits the key when there is no lock; PVE 6 sent ``""``).
    """
    out = dict(entry)
    for key in _INT_FIELDS & out.keys():
        value = out[key]
        if value is None or value == "":
            out.pop(key)
            continue
        with contextlib.suppress(ValueError):  # keep what was sent rather than fail
            out[key] = as_int(value)
    for key in _FLAG_FIELDS & out.keys():
        out[key] = int(as_flag(out[key]))
    if out.get("lock") in ("", None):
        out.pop("lock", None)
    return out
