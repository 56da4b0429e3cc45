"""Domain errors live outside the web layer; one table gives each its HTTP status and code."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import controlplane
from controlplane import errors
from controlplane.db import ConstraintViolation
from controlplane.web.errors import DOMAIN_STATUS, ApiError, http_of

SRC = Path(controlplane.__file__).parent


def _domain_classes() -> list[type[errors.DomainError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.DomainError) and cls.__module__ == errors.__name__
    ]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (errors.Invalid("x", field="name"), (422, "invalid")),
        (errors.NotFound("x"), (404, "not_found")),
        (errors.Conflict("x"), (409, "conflict")),
        (errors.NoCapacity("x", field="ram_mb"), (409, "conflict")),
        (errors.PaymentRequired("x"), (402, "payment_required")),
        (errors.BadRequest("x"), (400, "bad_request")),
        (errors.Unauthorized("x"), (401, "unauthorized")),
        (errors.Forbidden("x"), (403, "forbidden")),
        (errors.WireGuardDisabled(), (404, "wireguard_disabled")),
        (errors.NoPrivateKey("x"), (409, "no_private_key")),
        (errors.EmailNotVerified("x"), (403, "email_not_verified")),
        (errors.InvalidToken("x", field="token"), (400, "invalid_token")),
        (errors.WrongCredentials("x", user_id=None, reason="r"), (401, "unauthorized")),
        (errors.AccountDisabled("x", user_id=None, reason="r"), (403, "forbidden")),
        (ApiError("x", status=429), (429, "rate_limited")),
    ],
)
def test_each_refusal_has_its_status_and_code(exc: Exception, expected: tuple[int, str]) -> None:
    assert http_of(exc) == expected  # type: ignore[arg-type]


def test_every_domain_error_is_in_the_table_or_inherits_an_entry() -> None:
    for cls in _domain_classes():
        assert any(base in DOMAIN_STATUS for base in cls.__mro__), cls
    assert errors.NoCapacity not in DOMAIN_STATUS  # inherits Conflict's: 409 conflict


def test_domain_errors_know_nothing_of_http() -> None:
    for cls in _domain_classes():
        assert not hasattr(cls, "status"), cls
    assert not issubclass(ConstraintViolation, errors.DomainError)
    assert not issubclass(ApiError, errors.DomainError)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_services_do_not_import_the_web_layer() -> None:
    services = sorted(SRC.glob("*/service.py")) + [
        SRC / "billing" / name for name in ("holds.py", "limits.py", "standing.py", "webhooks.py")
    ]
    assert len(services) > 8
    offenders = {
        str(path.relative_to(SRC)): sorted(
            m
            for m in _imports(path)
            if m == "controlplane.web" or m.startswith("controlplane.web.")
        )
        for path in services
    }
    assert {path: found for path, found in offenders.items() if found} == {}
