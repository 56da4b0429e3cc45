"""Storages of the simulated cluster and the backup volumes on them.

PVE's default install has ``local`` (a directory: ``backup``, ``iso``, ``vztmpl``) and a
thin pool for guest disks; the simulator has the same two, plus any extra storages a test
or demo passes (a shared NFS or PBS store for backups, say). Content on a storage that is
not shared exists once per node: a backup made on pve1's ``local`` is not on pve2's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

GiB = 2**30


@dataclass(frozen=True)
class Storage:
    storage: str
    type: str  # dir | lvmthin | rbd | nfs | pbs ...
    content: frozenset[str]
    shared: bool = False
    total: int = 500 * GiB
    path: str | None = None  # a directory storage's path (its dump dir is path/dump)

    @property
    def content_list(self) -> str:
        return ",".join(sorted(self.content))


def default_storages(
    disk_storage: str, shared: bool, disk_type: str | None = None
) -> list[Storage]:
    """``local`` (PVE's default ``dir: local``, ``/var/lib/vz``) and the guest-disk storage
    (``rbd`` when shared, else ``lvmthin`` unless ``disk_type`` says, ``zfspool`` say)."""
    kind = disk_type or ("rbd" if shared else "lvmthin")
    return [
        Storage("local", "dir", frozenset({"backup", "iso", "vztmpl"}), path="/var/lib/vz"),
        Storage(disk_storage, kind, frozenset({"images", "rootdir"}), shared),
    ]


# pve-container's Migrate.pm: the local storage types whose volumes it can copy.
MIGRATABLE_TYPES = frozenset({"dir", "zfspool", "lvmthin", "lvm", "btrfs"})


def volume_name(store: Storage | None, vmid: int, base: str | None = None) -> str:
    """The name of CT ``vmid``'s root disk on ``store``: ``subvol-<id>-disk-0`` on a zfspool
    (under its template's base as ``base-.../subvol-...`` for a linked clone, as
    PVE::Storage::ZFSPoolPlugin names it), ``vm-<id>-disk-0`` elsewhere."""
    if store is not None and store.type == "zfspool":
        name = f"subvol-{vmid}-disk-0"
        return f"{base}/{name}" if base else name
    return f"vm-{vmid}-disk-0"


def base_of(volname: str) -> str | None:
    """The base image a linked clone's volume names (``parse_volname``'s fourth value)."""
    head, sep, _ = volname.partition("/")
    return head if sep and head.startswith("base-") else None


@dataclass
class BackupVolume:
    volid: str  # local:backup/vzdump-lxc-101-2026_12_02-20_30_00.tar.zst
    storage: str
    node: str | None  # the node whose copy of a local storage holds it; None when shared
    vmid: int
    ctime: int
    size: int
    format: str  # tar.zst, tar.gz, tar.lzo, tar
    config: dict[str, Any]  # the container's config as it was backed up
    notes: str | None = None
    protected: bool = False
    disk_bytes: int = 0  # the size of the disks it restores
    created: float = field(default_factory=time.time)

    def entry(self) -> dict[str, Any]:
        """One item of ``GET /nodes/{node}/storage/{storage}/content``."""
        item: dict[str, Any] = {
            "volid": self.volid,
            "content": "backup",
            "format": self.format,
            "size": self.size,
            "ctime": self.ctime,
            "vmid": self.vmid,
            "subtype": "lxc",
        }
        if self.notes:
            item["notes"] = self.notes.split("\n", 1)[0]
        if self.protected:
            item["protected"] = 1
        return item


_EXTENSIONS = {"0": "tar", "1": "tar.lzo", "lzo": "tar.lzo", "gzip": "tar.gz", "zstd": "tar.zst"}


def archive_format(compress: str) -> str:
    """vzdump's archive extension for a ``compress`` value (PVE::VZDump compressor_info)."""
    return _EXTENSIONS[compress]


def backup_volid(storage: str, vmid: int, when: float, fmt: str) -> str:
    stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.localtime(when))
    return f"{storage}:backup/vzdump-lxc-{vmid}-{stamp}.{fmt}"
