"""Fault injection settings, changeable at run time through ``PUT /_sim/faults``.

Rates are shares between 0 and 1, drawn from the simulator's seeded ``random.Random`` (only
when non-zero, so a run without faults draws nothing and stays reproducible).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    595: "Errors during connection establishment, proxy handshake",
    596: "Connection timed out",
    599: "Too many redirections",
}
_RATES = {
    "http_5xx_rate", "drop_rate", "drop_after_rate", "task_failure_rate",
    "task_warning_rate", "ssh_failure_rate",
}  # fmt: skip


@dataclass
class Faults:
    latency: float = 0.0  # seconds added before every /api2 request
    http_5xx_rate: float = 0.0  # share of /api2 requests answered with http_5xx_status
    http_5xx_status: int = 596  # 596 Connection timed out: pveproxy's proxy hop gave up
    drop_rate: float = 0.0  # share of requests whose connection closes before handling
    drop_after_rate: float = 0.0  # share handled, then the connection closes unanswered
    task_failure_rate: float = 0.0  # share of tasks that end with an error exit status
    task_warning_rate: float = 0.0  # share of tasks that end with "WARNINGS: 1"
    ssh_failure_rate: float = 0.0  # share of pct exec commands that exit 1
    stuck_lock_seconds: float = 0.0  # a clone's 'disk' / a backup's 'backup' lock outlives it

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial update; ``ValueError`` names the first bad key or value."""
        known = {f.name: f.type for f in fields(self)}
        staged: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(sorted(known))}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number")
            if key == "http_5xx_status":
                if int(value) not in REASONS:
                    raise ValueError(f"http_5xx_status must be one of {sorted(REASONS)}")
                staged[key] = int(value)
            elif key in _RATES and not 0 <= value <= 1:
                raise ValueError(f"{key} must be between 0 and 1")
            elif value < 0:
                raise ValueError(f"{key} must not be negative")
            else:
                staged[key] = float(value)
        for key, value in staged.items():
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
