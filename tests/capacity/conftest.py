from __future__ import annotations

import pytest

from controlplane.config import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The poller would replace the templates the tests give their nodes.
    return make_settings(database_url, node_poll_seconds=3600.0)
