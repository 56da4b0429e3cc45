"""Where the Proxmox reference data the suites read lives (provenance: data/pve/SOURCE.md)."""

from pathlib import Path

PVE_DATA = Path(__file__).resolve().parent / "data" / "pve"
PVE_SCHEMA = PVE_DATA / "pve-8.4-apischema.json"
PVE_FIXTURES = PVE_DATA / "fixtures"
