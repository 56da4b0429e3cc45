"""One JSON error shape for every error the API returns.

    {"error": {"status": 409, "code": "conflict", "message": "...",
               "fields": [{"field": "name", "message": "..."}]},
     "request_id": "..."}

Services raise domain errors (`controlplane.errors`), which `DOMAIN_STATUS` maps to a status
and a code; the HTTP layer itself raises `ApiError` (a status of its own, headers). FastAPI's
own errors (404 for unknown paths, 405, 422 validation) and unexpected exceptions are
rendered in the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from controlplane import errors
from controlplane.db import gateway as db
from controlplane.web.context import request_id_var

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
}


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    fields: list[FieldProblem] = []


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody
    request_id: str | None = None


class ApiError(Exception):
    status = 400
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}
        if status is not None:
            self.status = status


class Challenge(ApiError):
    """A 401 with its `WWW-Authenticate` header: no usable credentials on the request."""

    status = 401


class TooManyRequests(ApiError):
    status = 429


class ServiceUnavailable(ApiError):
    status = 503


# The one table from domain errors to HTTP: status and error code. A class not listed takes
# its nearest listed base's entry.
DOMAIN_STATUS: dict[type[errors.DomainError], tuple[int, str]] = {
    errors.DomainError: (400, "bad_request"),
    errors.BadRequest: (400, "bad_request"),
    errors.InvalidToken: (400, "invalid_token"),
    errors.Unauthorized: (401, "unauthorized"),
    errors.PaymentRequired: (402, "payment_required"),
    errors.Forbidden: (403, "forbidden"),
    errors.EmailNotVerified: (403, "email_not_verified"),
    errors.NotFound: (404, "not_found"),
    errors.WireGuardDisabled: (404, "wireguard_disabled"),
    errors.Conflict: (409, "conflict"),
    errors.NoPrivateKey: (409, "no_private_key"),
    errors.Invalid: (422, "invalid"),
    errors.Unreachable: (502, "node_unreachable"),
    errors.WrongCredentials: (401, "unauthorized"),
    errors.AccountDisabled: (403, "forbidden"),
}

# What a handler may catch from a service or a dependency to show as a refusal.
Refusal = errors.DomainError | ApiError
REFUSALS = (errors.DomainError, ApiError)


def http_of(exc: Refusal) -> tuple[int, str]:
    """The HTTP status and error code of a refusal."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code or _CODES.get(exc.status, "error")
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    raise AssertionError("unreachable: DomainError is in the table")


def status_of(exc: Refusal) -> int:
    return http_of(exc)[0]


def error_json(
    status: int,
    message: str,
    *,
    fields: list[dict[str, str]] | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "error": {
            "status": status,
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "fields": fields or [],
        },
        "request_id": request_id_var.get(),
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "vmid_range_start") -> "vmid_range_start"; ("query", "limit") -> "limit"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def _validation_message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    fields = [{"field": exc.field, "message": exc.message}] if exc.field else None
    return error_json(exc.status, exc.message, fields=fields, code=exc.code, headers=exc.headers)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    status, code = http_of(exc)
    fields = [{"field": exc.field, "message": exc.message}] if exc.field else None
    return error_json(status, exc.message, fields=fields, code=code)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return error_json(400, "the request body is not valid JSON", code="bad_json")
        fields.append(
            {"field": _field_name(tuple(err.get("loc", ()))), "message": _validation_message(err)}
        )
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return error_json(422, f"invalid request: {summary}", fields=fields)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else _CODES.get(exc.status_code, "error")
    if exc.status_code == 404 and message == "Not Found":
        message = "no such resource"
    if exc.status_code == 405:
        message = "method not allowed on this resource"
    return error_json(exc.status_code, message, headers=getattr(exc, "headers", None))


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    # A database that cannot be reached (down, restarting, pool exhausted) is a 503 the
    # client may retry. Services translate the conflicts they expect into their own
    # messages; one that nobody expected is logged (to be translated too) and is still a
    # 409 to the client, whose change the database refused.
    if isinstance(exc, db.Unavailable):
        log.warning("database unavailable", extra={"path": request.url.path, "error": str(exc)})
        return error_json(
            503,
            "the database cannot be reached; retry shortly",
            code="database_unavailable",
            headers={"Retry-After": "5"},
        )
    assert isinstance(exc, db.ConstraintViolation)
    log.warning("unexpected conflict", extra={"path": request.url.path, "error": str(exc)})
    which = f" ({exc.constraint})" if exc.constraint else ""
    return error_json(409, f"the change conflicts with existing data{which}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(db.Unavailable, database_error)
    app.add_exception_handler(db.ConstraintViolation, database_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(errors.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


# For route decorators: the error responses documented in the OpenAPI.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ErrorResponse, "description": _CODES.get(status, "error")}
        for status in statuses
    }
