"""The users suites share the auth suites' fixtures (cheap Argon2, generous limits)."""

from tests.auth.conftest import settings, user  # noqa: F401
