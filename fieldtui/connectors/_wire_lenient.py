"""Lenient pydantic building blocks for vendor payloads (mysensor, things, fleet).

Vendor documents are loose: numbers arrive as strings and strings as numbers, optional fields
go missing, timestamps come as unix seconds, naive text or ISO with offsets. The wire models
built from these accept all of that; only what a mapping cannot do without (an id) is strict.
A payload that still does not fit becomes :class:`InvalidResponse` naming the route, never a
pydantic traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from fieldtui.connectors._http import invalid_shape
from fieldtui.core.models import utc


class WireModel(BaseModel):
    """A vendor payload: unknown fields kept (``model_extra``), numbers accepted as text."""

    model_config = ConfigDict(
        extra="allow", coerce_numbers_to_str=True, populate_by_name=True, defer_build=True
    )


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # An optional field the vendor left empty or sent in a shape we cannot read is "unknown",
    # not a reason to refuse the whole payload.
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return handler(value)
    except ValidationError:
        return None


#: Marks an optional field whose unreadable value is taken as absent.
Soft = WrapValidator(_or_none)

SoftStr = Annotated[str | None, Soft]
SoftInt = Annotated[int | None, Soft]
SoftFloat = Annotated[float | None, Soft]
SoftTime = Annotated[datetime | None, Soft]

M = TypeVar("M", bound=BaseModel)


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid value')}".rstrip(".")


def parse(model: type[M], data: Any, response: httpx.Response, backend: str) -> M:
    """``data`` as ``model`` or InvalidResponse naming the route and the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_shape(response, backend, _describe(exc)) from None


def envelope(body: Any, response: httpx.Response, backend: str, key: str = "data") -> Any:
    """``body[key]``, or InvalidResponse when the body is not an object holding it."""
    if not isinstance(body, Mapping) or key not in body:
        raise invalid_shape(response, backend, f"expected an object with '{key}'")
    return body[key]


def as_utc(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def without_keys(payload: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """A copy of ``payload`` without session secrets (``raw`` never carries a token)."""
    return {key: value for key, value in payload.items() if key not in keys}


__all__ = [
    "Soft",
    "SoftFloat",
    "SoftInt",
    "SoftStr",
    "SoftTime",
    "WireModel",
    "as_utc",
    "envelope",
    "parse",
    "without_keys",
]
