"""Text helpers for the UI: vendor text is sanitised before it reaches the terminal."""

from __future__ import annotations

import re
from datetime import datetime

# C0 and C1 control characters (ESC included) except tab/newline: a device name from a cloud
# must never move the cursor or recolour the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: object, limit: int = 200) -> str:
    if value is None:
        return ""
    text = _CONTROL.sub("�", str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def age(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "—"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86_400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86_400}d ago"


def yes_no(value: bool | None, yes: str = "yes", no: str = "no") -> str:
    return "?" if value is None else (yes if value else no)
