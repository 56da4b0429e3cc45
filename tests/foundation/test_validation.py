"""Shapes are matched in full: a trailing newline never slips past a `$`.

`re.match(r"^...$", value)` accepts `value + "\\n"`; every check in the control plane goes
through `full_match` (or `Pattern.fullmatch`) instead. The bad-input suite sends the
trailing newline to every string field of every route; these are the reported cases, and a
scan of the sources that keeps `$`-anchored patterns away from `match`/`search`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from controlplane.config import Settings
from controlplane.sysconfig.schemas import Domain
from controlplane.tenants.schemas import Name
from controlplane.users.schemas import Email
from controlplane.validation import HttpUrl, Subdomain, full_match

SRC = Path(__file__).resolve().parents[2] / "src" / "controlplane"
# The simulator follows Proxmox's Perl patterns, where `$` also matches before a newline.
NOT_OURS = {"pvesim"}


def refused(kind: object, value: str) -> bool:
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return True
    return False


def test_full_match_refuses_a_trailing_newline() -> None:
    assert full_match(r"[a-z]+", "admin")
    assert not full_match(r"[a-z]+", "admin\n")
    assert not full_match(re.compile(r"^[a-z]+$"), "admin\n")
    assert re.match(r"^[a-z]+$", "admin\n")  # what went wrong before


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (Subdomain, "ok\n"),  # became a tenant
        (Email, "eve\n@example.test"),  # registered
        (Email, "eve@example.test\n"),
        (HttpUrl, "https://pve1.example:8006\n"),  # a 500 when Proxmox was called
        (Name, "Alpha\n"),
        (Name, "Al\rpha"),
        (Domain, "apps.example.com\n"),
    ],
)
def test_reported_values_are_refused(kind: object, value: str) -> None:
    assert refused(kind, value)
    assert not refused(kind, value.replace("\n", "").replace("\r", ""))


def test_a_reserved_subdomain_with_a_newline_is_refused() -> None:
    # "admin\n" passed the reserved check (not equal to "admin") and reached Caddy.
    assert refused(Subdomain, "admin\n")
    with pytest.raises(ValidationError, match="DNS label"):
        TypeAdapter(Subdomain).validate_python("admin\n")


def test_settings_refuse_a_trailing_newline() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, encryption_key="ab12" * 16 + "\n")  # type: ignore[call-arg]
    # URLs and host names are trimmed (a line of .env): what is kept has no newline.
    url = Settings(_env_file=None, public_url="https://cp.example.com\n").public_url  # type: ignore[call-arg]
    assert "\n" not in str(url)
    endpoint = Settings(_env_file=None, wg_endpoint="vpn.example.com:51820\n").wg_endpoint  # type: ignore[call-arg]
    assert endpoint == "vpn.example.com:51820"


def _anchored_patterns(tree: ast.Module) -> set[str]:
    """Names bound to `re.compile(r"...$")` without re.MULTILINE."""
    names = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        if ast.unparse(call.func) != "re.compile" or not call.args:
            continue
        source = call.args[0]
        multiline = any("MULTILINE" in ast.unparse(a) for a in call.args[1:])
        if isinstance(source, ast.Constant) and str(source.value).endswith("$") and not multiline:
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def test_no_anchored_pattern_is_used_with_match_or_search() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if NOT_OURS & set(path.relative_to(SRC).parts):
            continue
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner, method = ast.unparse(node.func.value), node.func.attr
            if method not in ("match", "search"):
                continue
            first = node.args[0] if node.args else None
            literal = isinstance(first, ast.Constant) and str(first.value).endswith("$")
            if (owner == "re" and literal) or owner in _anchored_patterns(tree):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert not offenders, "use full_match / fullmatch:\n" + "\n".join(offenders)
