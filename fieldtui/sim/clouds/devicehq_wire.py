"""DeviceHQ simulator: the wire conventions every route shares (errors, times, hashing).

Document 002 says the API answers 200, 404 or 423 only ("423 - unprocessable entity: any
other error such as not being logged in, using incorrect tokens"), with a JSON:API
``{"errors": [{"detail": ...}]}`` payload; task deletion is the one documented 204.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse

#: Responses are JSON:API 1.0 (document 002, "Format").
MEDIA_TYPE = "application/vnd.api+json"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
_HEX32 = re.compile(r"[0-9a-f]{32}")


class DHQError(Exception):
    """An error answered as ``{"errors": [{"detail": detail}]}`` with ``status`` (423 or 404)."""

    def __init__(self, detail: str, status: int = 423) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class NotFoundError(DHQError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, 404)


class ApiResponse(JSONResponse):
    media_type = MEDIA_TYPE


def error_response(exc: DHQError) -> ApiResponse:
    return ApiResponse({"errors": [{"detail": exc.detail}]}, status_code=exc.status)


def stable_hash(*parts: object) -> int:
    """A 64-bit hash that is the same in every process (``hash()`` is salted per run)."""
    raw = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")


def md5_hex(*parts: object) -> str:
    return hashlib.md5("\x1f".join(str(p) for p in parts).encode(), usedforsecurity=False).hexdigest()


def normalise_uuid(raw: str) -> str | None:
    """The UUID rule of document 002: strip whitespace and non-alphanumerics, then exactly
    32 hexadecimal characters, case-insensitive. ``None`` when ``raw`` is not a UUID."""
    cleaned = _NON_ALNUM.sub("", raw).lower()
    return cleaned if _HEX32.fullmatch(cleaned) else None


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def iso_offset(ts: float) -> str:
    """``2015-12-15T20:30:17.129+00:00``: the style of device and history timestamps."""
    return _dt(ts).isoformat(timespec="milliseconds")


def iso_z(ts: float) -> str:
    """``2021-06-21T14:44:59.247Z``: the style of task and session timestamps."""
    return iso_offset(ts).replace("+00:00", "Z")


def log_stamp(ts: float, *, sep: str = " ") -> str:
    """``09-23-16 11:12:29UTC``: the odd style of the log upload sample."""
    return _dt(ts).strftime(f"%m-%d-%y{sep}%H:%M:%SUTC")


def day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def date_window(params: dict[str, str], now: float) -> tuple[date, date]:
    """``start_date`` (default 10 days ago) and ``end_date`` (default tomorrow), ``YYYY-MM-DD``.

    The window is ``[start 00:00, end 00:00)`` UTC: the document defaults the end to
    *tomorrow* "so as to get all data", which only makes sense if the end day is excluded.
    """
    today = _dt(now).date()
    bounds: list[date] = []
    for name, default in (
        ("start_date", today - timedelta(days=10)),
        ("end_date", today + timedelta(days=1)),
    ):
        raw = params.get(name)
        if raw is None:
            bounds.append(default)
            continue
        parsed: date | None = None
        if _DATE.fullmatch(raw):
            try:
                parsed = date.fromisoformat(raw)
            except ValueError:
                parsed = None
        if parsed is None:
            raise DHQError(f"Invalid {name} '{raw}': dates must be YYYY-MM-DD formatted")
        bounds.append(parsed)
    start, end = bounds
    if start > end:
        raise DHQError(f"start_date {start.isoformat()} is after end_date {end.isoformat()}")
    return start, end


def jsonapi_body(value: Any) -> dict[str, Any]:
    """The ``data`` object of a JSON:API request body, or a 423 saying what is wrong."""
    if not isinstance(value, dict) or not isinstance(value.get("data"), dict):
        raise DHQError(
            'Request body must be a JSON:API document: {"data": {"type": ..., "attributes": {...}}}'
        )
    data: dict[str, Any] = value["data"]
    attributes = data.get("attributes", {})
    if not isinstance(attributes, dict):
        raise DHQError("data.attributes must be an object")
    return data
