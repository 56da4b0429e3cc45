"""The domain's errors: what services raise when they refuse a request.

They say what went wrong and, when one input is to blame, which `field`; they know nothing
of HTTP. `controlplane.web.errors` maps each class to a status and an error code in one
table, for the API and the dashboard alike.

    DomainError
     ├── Invalid            the input breaks a rule the schema cannot check
     ├── NotFound           the thing named does not exist (or is not yours)
     │    └── WireGuardDisabled
     ├── Conflict           the current state forbids it (name taken, wrong status ...)
     │    ├── NoCapacity    no node has room (RAM, VMIDs)
     │    └── NoPrivateKey  the peer's key was never kept
     ├── PaymentRequired    beyond the billing tier, or on hold
     ├── BadRequest         a malformed request the schema let through
     │    └── InvalidToken  an e-mail link's token that is unknown, used or expired
     ├── Unreachable        a node we must talk to for the request did not answer
     ├── Unauthorized       who you are is not established (bad credentials or token)
     ├── Forbidden          you are known but may not do this
     │    └── EmailNotVerified
     └── LoginRefused       a refused login (`user_id`, `reason` for the audit trail)
          ├── WrongCredentials
          └── AccountDisabled

The database's own `ConstraintViolation` is not one of these: each domain's service turns
the constraint names it expects into one of them, in one place.
"""

from __future__ import annotations

import uuid


class DomainError(Exception):
    """A refusal with a message for people and, optionally, the field it concerns."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(DomainError):
    pass


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class NoCapacity(Conflict):
    pass


class PaymentRequired(DomainError):
    pass


class BadRequest(DomainError):
    pass


class Unauthorized(DomainError):
    pass


class Forbidden(DomainError):
    pass


class EmailNotVerified(Forbidden):
    pass


class InvalidToken(BadRequest):
    pass


class Unreachable(DomainError):
    """Something we depend on for this request (a node over SSH) did not answer."""


class WireGuardDisabled(NotFound):
    def __init__(self) -> None:
        super().__init__(
            "WireGuard is not enabled on this control plane "
            "(set WG_HUB_PUBLIC_KEY and WG_ENDPOINT to enable it)"
        )


class NoPrivateKey(Conflict):
    pass


class LoginRefused(DomainError):
    """A refused login; `user_id` is None when no account has the e-mail."""

    def __init__(self, message: str, *, user_id: uuid.UUID | None, reason: str) -> None:
        super().__init__(message)
        self.user_id = user_id
        self.reason = reason


class WrongCredentials(LoginRefused):
    pass


class AccountDisabled(LoginRefused):
    pass
