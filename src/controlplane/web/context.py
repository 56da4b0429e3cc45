"""Per-request context that log lines and error bodies read (request id, client ip)."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
