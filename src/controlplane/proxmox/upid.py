"""Proxmox task ids (UPIDs) and task exit statuses.

``UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`` with upper-case hex numbers
and a trailing colon (docs/proxmox-reference.md section 5.1). The node in the UPID is where the task
runs, so its status must be polled there, whatever node the request went to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The regex pve-common uses to parse a UPID (PVE/Tools.pm upid_decode), anchored.
_UPID_RE = re.compile(
    r"^UPID:(?P<node>[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?):"
    r"(?P<pid>[0-9A-Fa-f]{8}):(?P<pstart>[0-9A-Fa-f]{8,9}):(?P<starttime>[0-9A-Fa-f]{8}):"
    r"(?P<type>[^:\s/]+):(?P<id>[^:\s/]*):(?P<user>[^:\s/]+):$"
)
_WARNINGS_RE = re.compile(r"WARNINGS: \d+")


@dataclass(frozen=True, slots=True)
class Upid:
    """The parts of a UPID; ``str(upid)`` gives the original string back."""

    raw: str
    node: str
    pid: int
    pstart: int
    starttime: int
    type: str
    id: str
    user: str

    def __str__(self) -> str:
        return self.raw

    @property
    def token_id(self) -> str | None:
        """The token name when the task was started with an API token (``user@realm!tok``)."""
        return self.user.split("!", 1)[1] if "!" in self.user else None


def parse_upid(value: str) -> Upid:
    """Parse a UPID string; raise ``ValueError`` when it is not one."""
    if not isinstance(value, str) or not (m := _UPID_RE.fullmatch(value)):
        raise ValueError(f"not a Proxmox UPID: {value!r}")
    return Upid(
        raw=value,
        node=m["node"],
        pid=int(m["pid"], 16),
        pstart=int(m["pstart"], 16),
        starttime=int(m["starttime"], 16),
        type=m["type"],
        id=m["id"],
        user=m["user"],
    )


def task_succeeded(exitstatus: str | None) -> bool:
    """Proxmox's own rule (``upid_status_is_error``): only ``OK`` and ``WARNINGS: n`` succeed."""
    return exitstatus == "OK" or bool(exitstatus and _WARNINGS_RE.fullmatch(exitstatus))
