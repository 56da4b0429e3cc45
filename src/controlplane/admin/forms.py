"""HTML forms to validated models, with one message per field for the template."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from controlplane.admin.sessions import CSRF_FIELD
from controlplane.web.errors import Refusal, status_of

M = TypeVar("M", bound=BaseModel)


class FormErrors(Exception):
    """The form is invalid; `errors` maps a field (or "" for the whole form) to a message."""

    def __init__(self, errors: dict[str, str], status: int = 422) -> None:
        super().__init__("; ".join(f"{k or 'form'}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.status = status


async def read_form(request: Request) -> dict[str, str]:
    """The submitted fields without surrounding spaces (the CSRF field left out).

    Line breaks are kept unless the value is blank: a one-line field with a line break is
    refused as the API refuses it, instead of being quietly repaired.
    """
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if key != CSRF_FIELD and isinstance(value, str):
            values[key] = value.strip(" \t") if value.strip() else ""
    return values


def to_data(
    values: dict[str, str],
    *,
    fields: Iterable[str],
    checkboxes: Iterable[str] = (),
    lines: Iterable[str] = (),
    keep_empty: Iterable[str] = (),
) -> dict[str, Any]:
    """Keep the model's fields; empty text means "not given" unless listed in `keep_empty`
    (then it means null); checkboxes are true when present; `lines` become lists."""
    checkboxes, lines, keep_empty = set(checkboxes), set(lines), set(keep_empty)
    data: dict[str, Any] = {}
    for name in fields:
        if name in checkboxes:
            data[name] = values.get(name) in ("on", "true", "1", "yes")
        elif name in lines:
            if name in values:
                data[name] = [line.strip() for line in values[name].splitlines() if line.strip()]
        elif values.get(name, "") != "":
            data[name] = values[name]
        elif name in keep_empty and name in values:
            data[name] = None
    return data


def _garbled(value: Any) -> bool:
    texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return any(isinstance(text, str) and "\ufffd" in text for text in texts)


def validate(model: type[M], data: dict[str, Any]) -> M:
    """Validate in lax mode (form values are text); raise FormErrors naming the fields."""
    # Starlette decodes invalid UTF-8 in a form to U+FFFD: refuse it rather than store it.
    garbled = {key: "is not valid UTF-8 text" for key, value in data.items() if _garbled(value)}
    if garbled:
        raise FormErrors(garbled)
    try:
        return model.model_validate(data, strict=False)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            loc = err.get("loc") or ("",)
            field = str(loc[0])
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            if len(loc) > 1:
                message = f"{'.'.join(str(p) for p in loc[1:])}: {message}"
            errors.setdefault(field, message)
        raise FormErrors(errors) from None


def from_api_error(exc: Refusal) -> FormErrors:
    """A service's refusal (409 name taken, 404 ...) shown next to its field."""
    return FormErrors({exc.field or "": exc.message}, status=status_of(exc))
