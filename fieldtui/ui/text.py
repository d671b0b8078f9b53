"""Text helpers for the UI: vendor text is sanitised before it reaches the terminal."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Console
from rich.text import Text

from fieldtui.core.text import strip_controls


def clean(value: object, limit: int = 200) -> str:
    if value is None:
        return ""
    text = strip_controls(value, "�")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_middle(value: object, limit: int) -> str:
    """:func:`clean`, but a value that ends in a number keeps it whole when cut: ``Grou…003``
    still tells ``Group 003`` from ``Group 004`` (numbered groups and names differ at their end);
    any other value is cut at its end."""
    text = clean(value, 10_000)
    if len(text) <= limit:
        return text
    number = re.search(r"\d+$", text)
    if number is None or len(number.group()) > limit - 3:
        return clean(text, limit)
    tail = number.group()
    return text[: limit - 1 - len(tail)] + "…" + tail


def batch_words(count: int, first: str) -> str:
    """``D1`` for one device, ``3 devices`` for more (a change made to several at once)."""
    return clean(first, 30) if count == 1 else f"{count} devices"


def _system_clock() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _system_clock


def now() -> datetime:
    """The UI's "now" for ages and clocks on screen (tests freeze it with :func:`set_clock`)."""
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Use ``clock`` for :func:`now` (None: the system clock again)."""
    global _clock
    _clock = clock or _system_clock


def age(then: datetime | None, now: datetime | None = None) -> str:
    if now is None:
        now = _clock()
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


def hanging(label: str, value: Text, width: int, console: Console, label_width: int = 10) -> Text:
    """``label`` then ``value``, its wrapped lines indented under the value's first column
    (a long "Not here" or alert list never restarts at the left edge)."""
    out = Text()
    out.append(f"{label:<{label_width}}", style="bold")
    for index, line in enumerate(value.wrap(console, max(20, width - label_width))):
        if index:
            out.append("\n" + " " * label_width)
        out.append_text(line)
    out.append("\n")
    return out


def cloud_error(backend: str, error: object, limit: int = 200) -> str:
    """``things: cannot reach … (what to do)``: the cloud named once, even when the error's own
    words already start with it."""
    words = clean(error, limit)
    name = clean(backend)
    while words.startswith(f"{name}: "):
        words = words[len(name) + 2 :]
    return f"{name}: {words}"
