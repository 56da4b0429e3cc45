"""WireGuard tests: the app with WireGuard enabled, and wireguard-go in network namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.config import Settings
from controlplane.wireguard.keys import generate_keypair
from tests.conftest import make_settings
from tests.wireguard.lab import Lab, skip_unless_possible

HUB_PRIVATE, HUB_PUBLIC = generate_keypair()
ENDPOINT = "192.0.2.1:51820"


def wg_settings(database_url: str, uapi_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "wg_hub_public_key": HUB_PUBLIC,
        "wg_endpoint": ENDPOINT,
        "wg_subnet": "10.66.0.0/24",
        # No such interface here (an empty UAPI folder): the syncer idles.
        "wg_interface": "wgcp-none",
        "wg_uapi_dir": str(uapi_dir),
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Overrides the suite's `settings`: the `app`/`admin`/`client` fixtures get WireGuard."""
    return wg_settings(database_url, tmp_path)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A hub and a client namespace, each with its wireguard-go, joined by a veth."""
    skip_unless_possible()
    lab = Lab()
    try:
        yield lab.start()
    finally:
        lab.stop()
