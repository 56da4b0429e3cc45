"""The simulator's parameter specs against the official 8.4 schema, endpoint by endpoint.

The simulator ships its own copy of the specs (the schema's licence keeps the file out of
the package); this test makes sure the copy says what the original says.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from controlplane.pvesim.api import ENDPOINTS
from controlplane.pvesim.params import Param
from tests.reference import PVE_SCHEMA

SCHEMA = PVE_SCHEMA

# Where the simulator knowingly checks less than PVE (values it stores but never parses).
UNCHECKED_FORMATS = {"mp[n]", "rootfs", "features", "dev[n]", "unused[n]", "startup",
                     "nameserver", "searchdomain", "hookscript", "timezone", "lock", "upid"}  # fmt: skip


@cache
def official() -> dict[tuple[str, str], dict[str, Any]]:
    index: dict[tuple[str, str], dict[str, Any]] = {}

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            for method, info in (node.get("info") or {}).items():
                index[(method, node["path"])] = info
            walk(node.get("children") or [])

    walk(json.loads(SCHEMA.read_text()))
    return index


def differences(name: str, ours: Param, theirs: dict[str, Any]) -> list[str]:
    problems = []
    if ours.type != theirs.get("type", "string"):
        problems.append(f"type {ours.type} != {theirs.get('type')}")
    if ours.optional != bool(theirs.get("optional")):
        problems.append(f"optional {ours.optional} != {bool(theirs.get('optional'))}")
    for key, value in (("minimum", ours.minimum), ("maximum", ours.maximum)):
        if key in theirs and (value is None or float(theirs[key]) != value):
            problems.append(f"{key} {value} != {theirs[key]}")
    if "enum" in theirs and list(ours.enum or ()) != list(theirs["enum"]):
        problems.append(f"enum {ours.enum} != {theirs['enum']}")
    if "maxLength" in theirs and ours.max_length != int(theirs["maxLength"]):
        problems.append(f"maxLength {ours.max_length} != {theirs['maxLength']}")
    fmt = theirs.get("format")
    if name not in UNCHECKED_FORMATS and fmt is not None:
        if isinstance(fmt, dict):
            if not (ours.format or "").startswith("property-string:"):
                problems.append("property string not checked")
        elif fmt != (ours.format or "") and fmt not in ("pve-vmid",):
            problems.append(f"format {ours.format} != {fmt}")
    return problems


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_sim_params_match_the_schema(endpoint: Any) -> None:
    info = official().get((endpoint.method, endpoint.path))
    assert info is not None, "the simulator serves a path the API does not have"
    theirs = (info.get("parameters") or {}).get("properties") or {}
    assert set(endpoint.params) == set(theirs)
    problems = {
        name: diff
        for name, spec in endpoint.params.items()
        if (diff := differences(name, spec, theirs[name]))
    }
    assert problems == {}


def test_permissions_match_the_schema() -> None:
    """Spot-check that each sim endpoint guards with the privilege the schema names."""
    for endpoint in ENDPOINTS:
        perms = official()[(endpoint.method, endpoint.path)].get("permissions") or {}
        check = perms.get("check")
        if check and check[0] == "perm":
            assert endpoint.check is not None, endpoint.path
        elif perms.get("user") == "all" and endpoint.path != "/nodes/{node}/lxc/{vmid}/clone":
            assert endpoint.check is None, endpoint.path


def test_proxied_endpoints_are_the_schemas_proxyto_node_ones() -> None:
    """A `{node}` that is not a cluster member fails pveproxy's hop only where the schema
    says `proxyto: node`; the others (rrddata, the snapshot index) run where they are asked."""
    wrong = [
        f"{e.method} {e.path}: proxied={e.proxied}"
        for e in ENDPOINTS
        if "{node}" in e.path
        and e.proxied != (official()[(e.method, e.path)].get("proxyto") == "node")
    ]
    assert wrong == []
