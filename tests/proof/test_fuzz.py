"""Fuzzing every operation of the OpenAPI, as the admin and as a user: no server error, no
answer the schema does not describe (status, content type, headers, body)."""

from __future__ import annotations

import pytest

from tests.proof.fuzz import fuzz_app, fuzz_target


@pytest.mark.parametrize("as_user", [False, True], ids=["admin", "user"])
def test_fuzz_quick(database_url: str, as_user: bool) -> None:
    with fuzz_target(database_url) as (app, world):
        report = fuzz_app(app, world, as_user=as_user, max_examples=5)
    print("\n" + report.summary())
    assert report.operations >= 50
    assert not report.failures, report.details()


@pytest.mark.slow
@pytest.mark.parametrize("as_user", [False, True], ids=["admin", "user"])
def test_fuzz_deep(database_url: str, as_user: bool) -> None:
    with fuzz_target(database_url) as (app, world):
        report = fuzz_app(app, world, as_user=as_user, max_examples=100)
    print("\n" + report.summary())
    assert report.operations >= 50
    assert not report.failures, report.details()
