"""Config value normalisation as pve-container stores and returns it.

- ``netN``: a property string; the required ``name`` first, then the other keys sorted,
  with ``type=veth`` and a random ``BC:24:11`` MAC filled in
  (docs/proxmox-reference.md section 4.9).
- ``tags``: split on ``,;`` and whitespace, lower-cased, sorted, deduplicated, ``;``-joined.
- ``description``: stored as comment lines; read back with ``\\n`` after every line.
"""

from __future__ import annotations

import random
import re

# Separators PVE accepts in list values (tags, delete): comma, semicolon, whitespace.
LIST_SPLIT = re.compile(r"[;,\s]+")

NET_KEYS = (
    "name", "bridge", "firewall", "gw", "gw6", "hwaddr", "ip", "ip6", "link_down", "mtu",
    "rate", "tag", "trunks", "type",
)  # fmt: skip
_MAC = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$")
MAC_PREFIX = "BC:24:11"


def parse_property_string(value: str) -> dict[str, str]:
    """``k=v,k=v`` into a dict; ``ValueError`` with PVE's message on a format error."""
    result: dict[str, str] = {}
    for part in value.split(","):
        if not part:
            continue
        if "=" not in part:
            raise ValueError("value without key, but schema does not define a default key")
        key, _, val = part.partition("=")
        if key in result:
            raise ValueError(f"duplicate key in comma-separated list property: {key}")
        result[key] = val
    return result


def check_net(value: str) -> str | None:
    """PVE's complaint about a ``netN`` value, or None when it is valid."""
    try:
        parsed = parse_property_string(value)
    except ValueError as exc:
        return str(exc)
    problems = []
    if "name" not in parsed:
        problems.append("name: property is missing and it is not optional")
    for key in parsed:
        if key not in NET_KEYS:
            problems.append(
                f"{key}: property is not defined in schema and the schema does not allow "
                "additional properties"
            )
    if "hwaddr" in parsed and not _MAC.match(parsed["hwaddr"]):
        problems.append("hwaddr: value does not look like a valid MAC address")
    if problems:
        return "format error\n" + "\n".join(problems)
    return None


def random_mac(rng: random.Random) -> str:
    return MAC_PREFIX + "".join(f":{rng.randrange(256):02X}" for _ in range(3))


def normalize_net(value: str, rng: random.Random) -> str:
    """Print a (valid) ``netN`` value the way pve-container writes it back."""
    parsed = parse_property_string(value)
    parsed.setdefault("type", "veth")
    if "hwaddr" not in parsed:
        parsed["hwaddr"] = random_mac(rng)
    ordered = ["name", *sorted(k for k in parsed if k != "name")]
    return ",".join(f"{k}={parsed[k]}" for k in ordered)


def normalize_tags(value: str) -> str:
    tags = {t.lower() for t in LIST_SPLIT.split(value.strip()) if t}
    return ";".join(sorted(tags))


def description_as_read(value: str) -> str:
    """What GET config returns for a stored description (Perl ``split`` drops trailing '')."""
    lines = value.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    return "".join(f"{line}\n" for line in lines)


def disk_size_bytes(volume: str) -> int:
    """The ``size=`` of a ``rootfs``/``mpN`` value in bytes (0 when absent)."""
    m = re.search(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)", volume)
    if not m:
        return 0
    factor = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[m.group(2)]
    return int(float(m.group(1)) * factor)
