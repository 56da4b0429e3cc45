"""Parameter schemas of the simulated endpoints and PVE's validator messages.

The specs mirror the official 8.4 API schema for each endpoint the simulator serves (a
test compares them with ``pve-8.4-apischema.json``); the schema file itself is not shipped.
Messages are pve-common ``JSONSchema.pm``'s (docs/proxmox-reference.md section 3.3). Format checks
cover the named formats these endpoints use; property strings are checked in
``propstr``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import param_error
from .propstr import LIST_SPLIT, check_net

_INT_RE = re.compile(r"^[+-]?\d+$")
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?"
_DNS_NAME = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")
_NODE = re.compile(rf"^{_LABEL}$")
_STORAGE_ID = re.compile(r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", re.IGNORECASE)
_CONFIGID = re.compile(r"^[a-z][a-z0-9_]+$", re.IGNORECASE)
_POOLID = re.compile(r"^[A-Za-z0-9_\-]+$")
_TAG = re.compile(r"^[a-z0-9_][a-z0-9_\-+.]*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Param:
    type: str = "string"  # string | integer | number | boolean
    optional: bool = True
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    format: str | None = None  # a named format, or "property-string:<name>"
    max_length: int | None = None
    pattern: str | None = None


def _fmt_node(v: str) -> str | None:
    return None if _NODE.match(v) else "value does not look like a valid node name"


def _fmt_dns(v: str) -> str | None:
    return None if _DNS_NAME.match(v) else "value does not look like a valid DNS name"


def _fmt_storage(v: str) -> str | None:
    return None if _STORAGE_ID.match(v) else f"storage ID '{v}' contains illegal characters"


def _fmt_configid(v: str) -> str | None:
    return None if _CONFIGID.match(v) else f"invalid configuration ID '{v}'"


def _fmt_configid_list(v: str) -> str | None:
    for item in LIST_SPLIT.split(v.strip()):
        if item and not _CONFIGID.match(item):
            return f"invalid configuration ID '{item}'"
    return None


def _fmt_poolid(v: str) -> str | None:
    return None if _POOLID.match(v) else f"pool name '{v}' contains illegal characters"


def _fmt_vmid_list(v: str) -> str | None:
    for item in LIST_SPLIT.split(v.strip()):
        if item and not (_INT_RE.match(item) and 100 <= int(item) <= 999999999):
            return "value does not look like a valid VM ID"
    return None


def _fmt_tags(v: str) -> str | None:
    for tag in LIST_SPLIT.split(v.strip()):
        if tag and not _TAG.match(tag):
            return f"invalid characters in tag '{tag}'"
    return None


_FORMATS: dict[str, Callable[[str], str | None]] = {
    "pve-node": _fmt_node,
    "dns-name": _fmt_dns,
    "pve-storage-id": _fmt_storage,
    "pve-configid": _fmt_configid,
    "pve-configid-list": _fmt_configid_list,
    "pve-poolid": _fmt_poolid,
    "pve-tag-list": _fmt_tags,
    "pve-vmid-list": _fmt_vmid_list,
}

PROPERTY_STRINGS: dict[str, Callable[[str], str | None]] = {"net": check_net}


def _check_value(spec: Param, value: Any) -> tuple[Any, str | None]:
    """Convert one raw value; return it and an error message (or None)."""
    if spec.type == "array":  # a repeated form key, or one value
        return (value if isinstance(value, list) else [value]), None
    if isinstance(value, list):
        return None, f"type check ('{spec.type}') failed - got ARRAY"
    text = str(value)
    converted: Any = text
    if spec.type == "integer":
        if not _INT_RE.match(text):
            return None, f"type check ('integer') failed - got '{text}'"
        converted = int(text)
    elif spec.type == "number":
        if not _NUMBER_RE.match(text):
            return None, f"type check ('number') failed - got '{text}'"
        converted = float(text)
    elif spec.type == "boolean":
        lowered = text.lower()
        if lowered in _TRUE:
            converted = 1
        elif lowered in _FALSE:
            converted = 0
        else:
            return None, f"type check ('boolean') failed - got '{text}'"
    if spec.type in ("integer", "number"):
        if spec.minimum is not None and converted < spec.minimum:
            return None, f"value must have a minimum value of {spec.minimum:g}"
        if spec.maximum is not None and converted > spec.maximum:
            return None, f"value must have a maximum value of {spec.maximum:g}"
        return (text if spec.type == "number" else converted), None
    if spec.max_length is not None and len(text) > spec.max_length:
        return None, f"value may only be {spec.max_length} characters long"
    if spec.enum is not None and text not in spec.enum:
        return (
            None,
            f"value '{text}' does not have a value in the enumeration '{', '.join(spec.enum)}'",
        )
    if spec.pattern is not None and not re.fullmatch(spec.pattern, text):
        return None, "value does not match the regex pattern"
    if spec.format is not None:
        checker = (
            PROPERTY_STRINGS.get(spec.format.split(":", 1)[1])
            if spec.format.startswith("property-string:")
            else _FORMATS.get(spec.format)
        )
        problem = checker(text) if checker else None
        if problem is not None:
            return None, f"invalid format - {problem}\n"
    return converted, None


_INDEXED = re.compile(r"^([a-z]+)(\d+)$")


def _lookup(specs: Mapping[str, Param], key: str) -> Param | None:
    if key in specs:
        return specs[key]
    m = _INDEXED.match(key)
    if m and f"{m.group(1)}[n]" in specs:
        limit = INDEX_LIMITS.get(m.group(1), 255)
        if int(m.group(2)) <= limit:
            return specs[f"{m.group(1)}[n]"]
    return None


INDEX_LIMITS = {"net": 31, "mp": 255, "unused": 255, "dev": 255}


def validate(specs: Mapping[str, Param], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert parameters like ``PVE::JSONSchema::validate``; raise 400 on errors."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        spec = _lookup(specs, key)
        if spec is None:
            errors[key] = (
                "property is not defined in schema and the schema does not allow "
                "additional properties"
            )
            continue
        converted, problem = _check_value(spec, value)
        if problem is not None:
            errors[key] = problem
        else:
            out[key] = converted
    for key, spec in specs.items():
        if not spec.optional and key not in raw:
            errors[key] = "property is missing and it is not optional"
    if errors:
        raise param_error(errors)
    return out


# -- specs shared by endpoints ------------------------------------------------------------

NODE = Param(format="pve-node", optional=False)
VMID = Param("integer", optional=False, minimum=100, maximum=999999999, format="pve-vmid")
OPT_VMID = Param("integer", minimum=100, maximum=999999999, format="pve-vmid")
BOOL = Param("boolean")
UPID = Param(optional=False)
NONNEG = Param("integer", minimum=0)

_LOCKS = (
    "backup", "create", "destroyed", "disk", "fstrim", "migrate", "mounted", "rollback",
    "snapshot", "snapshot-delete",
)  # fmt: skip

# Every key PUT /nodes/{node}/lxc/{vmid}/config accepts in 8.4 (indexed ones as key[n]).
CONFIG_PUT: dict[str, Param] = {
    "node": NODE,
    "vmid": VMID,
    "arch": Param(enum=("amd64", "i386", "arm64", "armhf", "riscv32", "riscv64")),
    "cmode": Param(enum=("shell", "console", "tty")),
    "console": BOOL,
    "cores": Param("integer", minimum=1, maximum=8192),
    "cpulimit": Param("number", minimum=0, maximum=8192),
    "cpuunits": Param("integer", minimum=0, maximum=500000),
    "debug": BOOL,
    "delete": Param(format="pve-configid-list"),
    "description": Param(max_length=8192),
    "dev[n]": Param(),
    "digest": Param(max_length=40),
    "features": Param(),
    "hookscript": Param(),
    "hostname": Param(format="dns-name", max_length=255),
    "lock": Param(enum=_LOCKS),
    "memory": Param("integer", minimum=16),
    "mp[n]": Param(),
    "nameserver": Param(),
    "net[n]": Param(format="property-string:net"),
    "onboot": BOOL,
    "ostype": Param(
        enum=(
            "debian",
            "devuan",
            "ubuntu",
            "centos",
            "fedora",
            "opensuse",
            "archlinux",
            "alpine",
            "gentoo",
            "nixos",
            "unmanaged",
        )
    ),
    "protection": BOOL,
    "revert": Param(format="pve-configid-list"),
    "rootfs": Param(),
    "searchdomain": Param(),
    "startup": Param(),
    "swap": Param("integer", minimum=0),
    "tags": Param(format="pve-tag-list"),
    "template": BOOL,
    "timezone": Param(),
    "tty": Param("integer", minimum=0, maximum=6),
    "unprivileged": BOOL,
    "unused[n]": Param(),
}

CLONE: dict[str, Param] = {
    "node": NODE,
    "vmid": VMID,
    "newid": VMID,
    "bwlimit": Param("number", minimum=0),
    "description": Param(),
    "full": BOOL,
    "hostname": Param(format="dns-name"),
    "pool": Param(format="pve-poolid"),
    "snapname": Param(format="pve-configid", max_length=40),
    "storage": Param(format="pve-storage-id"),
    "target": Param(format="pve-node"),
}

NODE_VMID: dict[str, Param] = {"node": NODE, "vmid": VMID}


# -- snapshots (pve-container API2/LXC/Snapshot.pm; 'pve-lxc-snapshot-name') -------------

SNAPNAME = Param(format="pve-configid", max_length=40, optional=False)
NODE_VMID_SNAP: dict[str, Param] = {"node": NODE, "vmid": VMID, "snapname": SNAPNAME}
SNAPSHOT_CREATE: dict[str, Param] = {**NODE_VMID_SNAP, "description": Param()}
SNAPSHOT_DELETE: dict[str, Param] = {**NODE_VMID_SNAP, "force": BOOL}
SNAPSHOT_ROLLBACK: dict[str, Param] = {**NODE_VMID_SNAP, "start": BOOL}


# -- backups and restore (pve-manager API2/VZDump.pm + VZDump/Common.pm, pve-storage
# API2/Storage/Status.pm + Content.pm, pve-container API2/LXC.pm create_vm) --------------

STORAGE_ID = Param(format="pve-storage-id", optional=False)
OPT_STORAGE = Param(format="pve-storage-id")

VZDUMP: dict[str, Param] = {
    "all": BOOL,
    "bwlimit": Param("integer", minimum=0),
    "compress": Param(enum=("0", "1", "gzip", "lzo", "zstd")),
    "dumpdir": Param(),
    "exclude": Param(format="pve-vmid-list"),
    "exclude-path": Param("array"),
    "fleecing": Param(format="backup-fleecing"),
    "ionice": Param("integer", minimum=0, maximum=8),
    "job-id": Param(max_length=50, pattern=r"\S+"),
    "lockwait": Param("integer", minimum=0),
    "mailnotification": Param(enum=("always", "failure")),
    "mailto": Param(format="email-or-username-list"),
    "maxfiles": Param("integer", minimum=1),
    "mode": Param(enum=("snapshot", "suspend", "stop")),
    "node": Param(format="pve-node"),
    "notes-template": Param(max_length=1024),
    "notification-mode": Param(enum=("auto", "legacy-sendmail", "notification-system")),
    "notification-policy": Param(enum=("always", "failure", "never")),
    "notification-target": Param(format="pve-configid"),
    "pbs-change-detection-mode": Param(enum=("legacy", "data", "metadata")),
    "performance": Param(format="backup-performance"),
    "pigz": Param("integer"),
    "pool": Param(),
    "protected": BOOL,
    "prune-backups": Param(format="prune-backups"),
    "quiet": BOOL,
    "remove": BOOL,
    "script": Param(),
    "stdexcludes": BOOL,
    "stdout": BOOL,
    "stop": BOOL,
    "stopwait": Param("integer", minimum=0),
    "storage": OPT_STORAGE,
    "tmpdir": Param(),
    "vmid": Param(format="pve-vmid-list"),
    "zstd": Param("integer"),
}

STORAGE_INDEX: dict[str, Param] = {
    "node": NODE,
    "content": Param(format="pve-storage-content-list"),
    "enabled": BOOL,
    "format": BOOL,
    "storage": OPT_STORAGE,
    "target": Param(format="pve-node"),
}
STORAGE_CONTENT: dict[str, Param] = {
    "node": NODE,
    "storage": STORAGE_ID,
    "content": Param(format="pve-storage-content"),
    "vmid": OPT_VMID,
}
VOLUME_DELETE: dict[str, Param] = {
    "node": NODE,
    "storage": OPT_STORAGE,
    "volume": Param(optional=False),
    "delay": Param("integer", minimum=1, maximum=30),
}

# POST /nodes/{node}/lxc: every config key of PUT .../config except the PUT-only ones, plus
# the create and restore options.
CREATE: dict[str, Param] = {
    **{k: v for k, v in CONFIG_PUT.items() if k not in ("delete", "revert", "digest")},
    "bwlimit": Param("number", minimum=0),
    "force": BOOL,
    "ignore-unpack-errors": BOOL,
    "ostemplate": Param(optional=False, max_length=255),
    "password": Param(),
    "pool": Param(format="pve-poolid"),
    "restore": BOOL,
    "ssh-public-keys": Param(),
    "start": BOOL,
    "storage": OPT_STORAGE,
    "unique": BOOL,
}


# -- resize and migrate (pve-container API2/LXC.pm resize_vm, migrate_vm) -----------------

RESIZE: dict[str, Param] = {
    "node": NODE,
    "vmid": VMID,
    "disk": Param(enum=("rootfs", *(f"mp{i}" for i in range(256))), optional=False),
    "size": Param(pattern=r"\+?\d+(\.\d+)?[KMGT]?", optional=False),
    "digest": Param(max_length=40),
}
MIGRATE: dict[str, Param] = {
    "node": NODE,
    "vmid": VMID,
    "target": Param(format="pve-node", optional=False),
    "bwlimit": Param("number", minimum=0),
    "online": BOOL,
    "restart": BOOL,
    "target-storage": Param(format="storage-pair-list"),
    "timeout": Param("integer"),
}


# -- rrddata (pve-container API2/LXC.pm 'rrddata', pve-manager API2/Nodes.pm 'rrddata') ----

_TIMEFRAME = Param(enum=("hour", "day", "week", "month", "year"), optional=False)
_CF = Param(enum=("AVERAGE", "MAX"))
CT_RRDDATA: dict[str, Param] = {"node": NODE, "vmid": VMID, "timeframe": _TIMEFRAME, "cf": _CF}
NODE_RRDDATA: dict[str, Param] = {"node": NODE, "timeframe": _TIMEFRAME, "cf": _CF}
