"""Small request helpers the simulated clouds share."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request


class NotJson:
    """The body was present but not JSON (kept apart from a JSON ``null``)."""

    def __init__(self, text: str) -> None:
        self.text = text


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def json_body(request: Request) -> Any:
    """The decoded JSON body; None when empty; a :class:`NotJson` when it does not parse."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return NotJson(raw.decode("utf-8", "replace"))
