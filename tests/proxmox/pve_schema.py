"""Proxmox's API schema (tests/data/pve/pve-8.4-apischema.json) as JSON Schema validators.

PVE's dialect differs from JSON Schema: properties are required unless ``optional: 1``,
indexed keys are written ``net[n]``, patterns are implicitly anchored, ``format`` is either
a named format (whose regexes live in pve-common, re-stated below for the ones the client
uses) or an inline property-string format, and booleans travel as ``0``/``1``.

Strictness: request parameters are checked strictly (PVE itself rejects unknown keys).
Responses are checked strictly too, objects included, except for the deviations listed in
``RETURN_LENIENCY`` / ``EXTRA_RETURN_KEYS`` / ``OPTIONAL_RETURN_KEYS``: each is a documented case where real PVE
returns more than (or other than) its schema says (docs/proxmox-reference.md sections 3.5, 4.x, 5.2).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from tests.reference import PVE_SCHEMA

SCHEMA_FILE = PVE_SCHEMA

_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?"
NAMED_FORMATS = {  # pve-common PVE/JSONSchema.pm
    "pve-node": rf"^{_LABEL}$",
    "dns-name": rf"^(?:{_LABEL}\.)*{_LABEL}$",
    "pve-storage-id": r"^(?i:[a-z][a-z0-9\-_.]*[a-z0-9])$",
    "pve-configid": r"^(?i:[a-z][a-z0-9_]+)$",
    "pve-configid-list": r"^(?i:[a-z][a-z0-9_]+)(?:[,;\s]+(?i:[a-z][a-z0-9_]+))*$",
    "pve-poolid": r"^[A-Za-z0-9_\-]+$",
    "pve-tag-list": r"^(?i:[a-z0-9_][a-z0-9_\-+.]*)(?:[,;\s]+(?i:[a-z0-9_][a-z0-9_\-+.]*))*$",
}

RRD_VM_SOURCES = ("maxcpu", "cpu", "maxmem", "mem", "maxdisk", "disk", "netin", "netout",
                  "diskread", "diskwrite")  # fmt: skip
RRD_NODE_SOURCES = ("loadavg", "maxcpu", "cpu", "iowait", "memtotal", "memused", "swaptotal",
                    "swapused", "roottotal", "rootused", "netin", "netout")  # fmt: skip

# Keys real PVE returns beyond the (incomplete) return schema, per endpoint and per
# object within the answer ("" is the answer itself, or each item of a list answer).
EXTRA_RETURN_KEYS: dict[tuple[str, str], dict[str, set[str]]] = {
    # 4.5/4.6: 'type', 'pid' (running) and 'swap' are sent but not documented
    ("GET", "/nodes/{node}/lxc"): {"": {"type", "pid", "swap"}},
    ("GET", "/nodes/{node}/lxc/{vmid}/status/current"): {"": {"type", "pid", "swap"}},
    # 5.2: token tasks split the user into 'user' and 'tokenid'
    ("GET", "/nodes/{node}/tasks/{upid}/status"): {"": {"tokenid"}},
    # 4.3: fixture get-nodes.pve7.4.json has id, type, disk and maxdisk
    ("GET", "/nodes"): {"": {"id", "type", "disk", "maxdisk"}},
    # fixture get-cluster-resources.pve8.json has 'shared' (storage) and 'sdn'
    ("GET", "/cluster/resources"): {"": {"shared", "sdn"}},
    # fixture get-nodes-node-status.pve7.4.json: cpuinfo has these four undocumented keys
    ("GET", "/nodes/{node}/status"): {"cpuinfo": {"flags", "hvm", "mhz", "user_hz"}},
    # 13.1: the 'current' pseudo-entry has digest and running; a snapshot being made or
    # deleted has snapstate (pve-container API2/LXC/Snapshot.pm 'list')
    ("GET", "/nodes/{node}/lxc/{vmid}/snapshot"): {"": {"digest", "running", "snapstate"}},
    # 14.3: every volume has 'content', a backup its 'subtype' (PVE::Storage volume_list)
    ("GET", "/nodes/{node}/storage/{storage}/content"): {"": {"content", "subtype"}},
    # 18: the schema's items are {"properties": {}}; a point is 'time' plus the data
    # sources of pve-cluster status.c rrd_def_vm / rrd_def_node
    ("GET", "/nodes/{node}/lxc/{vmid}/rrddata"): {"": {"time", *RRD_VM_SOURCES}},
    ("GET", "/nodes/{node}/rrddata"): {"": {"time", *RRD_NODE_SOURCES}},
}
# Keys the return schema calls required that real PVE leaves out, per endpoint and object.
OPTIONAL_RETURN_KEYS: dict[tuple[str, str], dict[str, set[str]]] = {
    # 13.1: the 'current' pseudo-entry has no description (nor snaptime)
    ("GET", "/nodes/{node}/lxc/{vmid}/snapshot"): {"": {"description"}},
}
# Whole answers whose type differs from the schema in real PVE.
RETURN_LENIENCY: dict[tuple[str, str], dict[str, Any]] = {
    # 3.5: nextid is documented as integer but Perl sends a numeric string
    ("GET", "/cluster/nextid"): {"type": "string", "pattern": r"^\d+$"},
}
NULLABLE_RETURNS = {
    # 7: a stopped container has no interfaces: {"data": null}
    ("GET", "/nodes/{node}/lxc/{vmid}/interfaces"),
}


@cache
def load() -> dict[tuple[str, str], dict[str, Any]]:
    """``(METHOD, path template)`` to the method's info block."""
    index: dict[tuple[str, str], dict[str, Any]] = {}

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            for method, info in (node.get("info") or {}).items():
                index[(method, node["path"])] = info
            walk(node.get("children") or [])

    walk(json.loads(SCHEMA_FILE.read_text()))
    return index


def template_regex(path: str) -> re.Pattern[str]:
    """``{volume}`` takes the rest of the path: a volume id has a '/' (local:backup/x)."""

    def group(m: re.Match[str]) -> str:
        return f"(?P<{m[1]}>{'.+' if m[1] == 'volume' else '[^/]+'})"

    return re.compile("^" + re.sub(r"\{(\w+)\}", group, path) + "$")


def match(method: str, rel_path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The schema path, info and path parameters for a concrete request path."""
    for (m, path), info in load().items():
        if m == method and (found := template_regex(path).match(rel_path)):
            return path, info, found.groupdict()
    raise LookupError(f"{method} {rel_path} is not in the official schema")


def _number(value: Any) -> float:
    return float(value)


def convert(
    schema: dict[str, Any],
    *,
    strict: bool,
    extras: dict[str, set[str]] | None = None,
    at: str = "",
    optional: dict[str, set[str]] | None = None,
) -> dict[str, Any]:
    """PVE dialect to JSON Schema (2020-12).

    ``strict``: an object whose ``additionalProperties`` is unspecified gets none beyond
    ``extras[at]`` (``at`` is the dotted key path inside the answer). An object schema with
    no ``properties`` at all (``ha``) is free-form, as PVE means it.
    """
    extras = extras or {}
    optional = optional or {}
    kind = schema.get("type")
    out: dict[str, Any] = {}
    if kind == "object":
        out["type"] = "object"
        props: dict[str, Any] = {}
        patterns: dict[str, Any] = {}
        required = []
        for key, sub in (schema.get("properties") or {}).items():
            converted = convert(
                sub, strict=strict, extras=extras, at=f"{at}.{key}".lstrip("."), optional=optional
            )
            if key.endswith("[n]"):
                patterns[f"^{re.escape(key[:-3])}\\d+$"] = converted
            else:
                props[key] = converted
                if not sub.get("optional") and key not in optional.get(at, set()):
                    required.append(key)
        for key in extras.get(at, set()):
            props.setdefault(key, {})
        out.update(properties=props, required=required)
        if patterns:
            out["patternProperties"] = patterns
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            out["additionalProperties"] = convert(additional, strict=strict)
        elif additional is None:
            out["additionalProperties"] = not strict or "properties" not in schema
        else:
            out["additionalProperties"] = bool(additional)
    elif kind == "array":
        items = convert(
            schema.get("items") or {}, strict=strict, extras=extras, at=at, optional=optional
        )
        out = {"type": "array", "items": items}
    elif kind == "boolean":
        out = {"type": "integer", "enum": [0, 1]}  # PVE sends and accepts 0/1
    elif kind in ("integer", "number"):
        out = {"type": kind}
        for key in ("minimum", "maximum"):
            if key in schema:
                out[key] = _number(schema[key])
    elif kind == "string":
        out = {"type": "string"}
        if "enum" in schema:
            out["enum"] = list(schema["enum"])
        if "maxLength" in schema:
            out["maxLength"] = int(schema["maxLength"])
        patterns = []
        if "pattern" in schema:
            patterns.append(f"^(?:{schema['pattern']})$")
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in NAMED_FORMATS:
            patterns.append(NAMED_FORMATS[fmt])
        if len(patterns) == 1:
            out["pattern"] = patterns[0]
        elif patterns:
            out["allOf"] = [{"pattern": p} for p in patterns]
    elif kind == "null":
        out = {"type": "null"}
    return out


def check_property_string(value: str, fmt: dict[str, Any]) -> list[str]:
    """Problems of a ``k=v,...`` value against an inline property-string format."""
    default_key = next((k for k, v in fmt.items() if v.get("default_key")), None)
    seen: dict[str, str] = {}
    problems = []
    for part in value.split(","):
        key, sep, val = part.partition("=")
        if not sep:
            if default_key is None:
                problems.append(f"'{part}' has no key and there is no default key")
                continue
            key, val = default_key, part
        if key not in fmt:
            problems.append(f"unknown key {key!r}")
            continue
        seen[key] = val
        sub = convert(fmt[key], strict=True)
        if fmt[key].get("type") in ("integer", "boolean"):
            if not re.fullmatch(r"-?\d+", val):
                problems.append(f"{key}={val!r} is not an integer")
        else:
            problems.extend(
                f"{key}: {e.message}" for e in Draft202012Validator(sub).iter_errors(val)
            )
    for key, spec in fmt.items():
        if not spec.get("optional") and key not in seen and not spec.get("default_key"):
            problems.append(f"required key {key!r} is missing")
    return problems


def _coerce(spec: dict[str, Any], value: str) -> Any:
    """A form value as the validator sees it: digit strings for integers, 0/1 for booleans."""
    kind = spec.get("type")
    if kind in ("integer", "boolean") and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "number" and re.fullmatch(r"-?\d+(?:\.\d+)?", value):
        return float(value)
    return value


def request_problems(method: str, rel_path: str, params: dict[str, str]) -> list[str]:
    """Everything wrong with a request by the official parameter schema."""
    path, info, path_params = match(method, rel_path)
    spec = info.get("parameters") or {"type": "object", "properties": {}}
    props = spec.get("properties") or {}
    merged: dict[str, Any] = {**params, **path_params}
    typed: dict[str, Any] = {}
    problems = []
    for key, value in merged.items():
        prop = props.get(key) or props.get(re.sub(r"\d+$", "[n]", key))
        typed[key] = _coerce(prop, value) if prop else value
        if prop and isinstance(prop.get("format"), dict):
            problems.extend(f"{key}: {p}" for p in check_property_string(value, prop["format"]))
    schema = convert({**spec, "type": "object"}, strict=True)
    validator = Draft202012Validator(schema)
    problems.extend(f"{path}: {e.json_path}: {e.message}" for e in validator.iter_errors(typed))
    return problems


def response_problems(method: str, rel_path: str, data: Any) -> list[str]:
    """Everything wrong with a response's ``data`` by the official return schema."""
    path, info, _ = match(method, rel_path)
    key = (method, path)
    if key in RETURN_LENIENCY:
        schema = RETURN_LENIENCY[key]
    else:
        returns = info.get("returns") or {}
        schema = convert(
            returns,
            strict=True,
            extras=EXTRA_RETURN_KEYS.get(key, {}),
            optional=OPTIONAL_RETURN_KEYS.get(key, {}),
        )
        if key in NULLABLE_RETURNS:
            schema = {"anyOf": [schema, {"type": "null"}]}
    validator = Draft202012Validator(schema)
    return [f"{method} {path}: {e.json_path}: {e.message}" for e in validator.iter_errors(data)]
