"""API tokens of the simulated cluster and their privileges.

A token has an ACL: a map from path (``/``, ``/vms``, ``/vms/100``, ``/nodes/pve1``) to
privileges, inherited by sub-paths like PVE's propagating ACLs. ``acl=None`` means every
privilege everywhere (a token without privilege separation on ``root@pam``). The
``Authorization`` header is parsed like pve-http-server does
(docs/proxmox-reference.md section 2.1).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import PveError

# A development default (printed at start-up); real deployments pass their own tokens.
DEFAULT_TOKEN_ID = "root@pam!controlplane"  # noqa: S105
DEFAULT_TOKEN_SECRET = "5e7d6c4b-3a29-4f18-9e07-d6c5b4a39281"  # noqa: S105

VM_PRIVS = frozenset(
    {
        "VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM",
        "VM.Config.CPU", "VM.Config.Cloudinit", "VM.Config.Disk", "VM.Config.HWType",
        "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.Console",
        "VM.Migrate", "VM.Monitor", "VM.PowerMgmt", "VM.Snapshot", "VM.Snapshot.Rollback",
    }
)  # fmt: skip
ROLES: dict[str, frozenset[str]] = {
    "PVEAuditor": frozenset(
        {"VM.Audit", "Sys.Audit", "Datastore.Audit", "SDN.Audit", "Pool.Audit", "Mapping.Audit"}
    ),
    "PVEVMUser": frozenset(
        {"VM.Audit", "VM.Console", "VM.PowerMgmt", "VM.Backup", "VM.Config.CDROM"}
    ),
    "PVEVMAdmin": VM_PRIVS | {"Datastore.AllocateSpace", "Datastore.Audit", "SDN.Use"},
    "NoAccess": frozenset(),
}
_TOKEN_ID = re.compile(
    r"^(?P<user>[^\s:/!@]+@[A-Za-z][A-Za-z0-9.\-_]+)!(?P<name>[A-Za-z][A-Za-z0-9.\-_]+)$"
)
_HEADER = re.compile(r"(?:^|\s)PVEAPIToken(?:=| )([^;]*)")


@dataclass(frozen=True)
class Token:
    """``tokenid`` is ``user@realm!name``; ``acl`` maps paths to privileges (None: all)."""

    tokenid: str
    secret: str
    acl: Mapping[str, frozenset[str]] | None = field(default=None)

    def __post_init__(self) -> None:
        if not _TOKEN_ID.match(self.tokenid):
            raise ValueError(f"token id must look like user@realm!name, got {self.tokenid!r}")

    @property
    def user(self) -> str:
        return self.tokenid.split("!", 1)[0]

    @property
    def name(self) -> str:
        return self.tokenid.split("!", 1)[1]

    @classmethod
    def with_role(cls, tokenid: str, secret: str, role: str, path: str = "/") -> Token:
        if role == "Administrator":
            return cls(tokenid, secret, None)
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; known: Administrator, {', '.join(ROLES)}")
        return cls(tokenid, secret, {path: ROLES[role]})

    @classmethod
    def parse(cls, spec: str) -> Token:
        """``user@realm!name=secret`` with an optional ``:Role`` suffix (default all rights)."""
        tokenid, sep, rest = spec.partition("=")  # a token id never contains "="
        if not sep:
            raise ValueError("a token is user@realm!name=secret[:Role]")
        secret, _, role = rest.partition(":")
        return cls.with_role(tokenid, secret, role or "Administrator")

    def has(self, path: str, priv: str) -> bool:
        if self.acl is None:
            return True
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            privs = self.acl.get("/" + "/".join(parts[:depth]))
            if privs is not None and priv in privs:
                return True
        return False

    def check(self, path: str, privs: Iterable[str], *, any_of: bool = False) -> None:
        """Raise PVE's 403 unless the token has all (or, with ``any_of``, one) of ``privs``."""
        privs = list(privs)
        if any_of:
            if not any(self.has(path, p) for p in privs):
                raise PveError(403, f"Permission check failed ({path}, {'|'.join(privs)})")
            return
        for priv in privs:
            if not self.has(path, priv):
                raise PveError(403, f"Permission check failed ({path}, {priv})")


def authenticate(header: str | None, tokens: Mapping[str, Token]) -> Token:
    """The token named by an ``Authorization`` header, or PVE's 401 (with an empty body).

    The texts are those of pve-manager < 8.4.17, which nearly every 8.x host runs.
    """
    if not header or not (m := _HEADER.search(header)):
        raise PveError(401, "No ticket", body=False)
    tokenid, sep, secret = m.group(1).strip().rpartition("=")
    if not sep or not _TOKEN_ID.match(tokenid):
        raise PveError(401, "invalid token value!", body=False)
    token = tokens.get(tokenid)
    if token is None:
        user, _, name = tokenid.partition("!")
        raise PveError(401, f"no such token '{name}' for user '{user}'", body=False)
    if not hmac.compare_digest(token.secret.encode(), secret.encode()):
        raise PveError(401, "invalid token value!", body=False)
    return token
