"""What the read commands print: JSON for scripts, compact lines for people.

Vendor text (names, statuses, error words) is untrusted: a device named ``"\\x1b]52;..."``
must not reach the terminal as an escape sequence. Human output drops C0/C1 control
characters (newline aside, where a value may span lines); JSON output escapes them, so it
stays valid JSON and stays inert on a terminal. Unicode format characters (a right-to-left
override, zero-width characters) are treated the same way.

JSON output is strict (RFC 8259), for every ``--json`` document and every NDJSON line: a number
a float cannot hold (``NaN``, ``Infinity``, an integer beyond the float range) is printed as
``null``, and the text it stood for is kept in the document's top-level ``raw`` object, keyed
by the value's JSON Pointer (``{"raw": {"/device/battery": "Infinity"}}``).
"""

from __future__ import annotations

import json
import math
import re
import textwrap
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from fieldtui.core.models import Device, StreamEvent, Task, TelemetrySample
from fieldtui.core.text import is_format_char, strip_controls
from fieldtui.service.merge import DeviceView, Source

WIDTH = 80
_MISSING = "-"
_C1_OR_DEL = re.compile(r"[\x7f-\x9f]")


# -- sanitising ----------------------------------------------------------------------------
def clean(text: object) -> str:
    """``text`` as a string without control characters (tabs become spaces, newlines stay)."""
    return strip_controls(text)


def clean_line(text: object) -> str:
    """``text`` on one line, without control characters."""
    return " ".join(clean(text).split("\n"))


#: Where the text of numbers printed as ``null`` goes, at the top of a JSON document.
RAW_KEY = "raw"
#: A JSON document may carry ``raw`` of its own (a device's vendor payload sits lower, but a
#: caller's top level could): the numbers' text then goes here instead.
RAW_KEY_FALLBACK = "raw_numbers"


def _pointer_part(key: object) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _number_text(value: float | int) -> str:
    if isinstance(value, float):
        if value != value:
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    try:
        return str(value)
    except ValueError:  # beyond Python's int-to-text limit; json.loads never makes one
        return f"an integer of {value.bit_length()} bits"


def _unholdable(value: object) -> bool:
    """A number strict JSON (or a reader's float) cannot hold: NaN, +-Infinity, a huge int."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            return True
    return False


def _key_text(key: object) -> str:
    if isinstance(key, float | int) and _unholdable(key):
        return _number_text(key)
    return str(key)


def strict(document: Any) -> Any:
    """``document`` ready for strict JSON: unholdable numbers as ``None``, their text in ``raw``.

    Walked with a stack, not recursion: a vendor payload nested as deep as ``json.loads``
    allows must not end a command in ``RecursionError``. Containers are copied, never changed.
    """
    raw: dict[str, str] = {}
    root: list[Any] = [document]
    stack: list[tuple[dict[str, Any] | list[Any], Any, str]] = [(root, 0, "")]
    while stack:
        container, slot, pointer = stack.pop()
        value = container[slot]
        if _unholdable(value):
            raw[pointer or "/"] = _number_text(value)
            container[slot] = None
        elif isinstance(value, dict):
            copied: dict[str, Any] = {}
            for key, item in value.items():
                name = key if isinstance(key, str) else _key_text(key)
                copied[name] = item
            container[slot] = copied
            # Reversed onto the stack, so ``raw`` lists the numbers in document order.
            stack.extend((copied, name, f"{pointer}/{_pointer_part(name)}") for name in reversed(copied))
        elif isinstance(value, list | tuple):
            items = list(value)
            container[slot] = items
            stack.extend((items, index, f"{pointer}/{index}") for index in reversed(range(len(items))))
    cleaned = root[0]
    if raw and isinstance(cleaned, dict):
        cleaned[RAW_KEY if RAW_KEY not in cleaned else RAW_KEY_FALLBACK] = raw
    return cleaned


def _escaped(char: str) -> str:
    # An astral character is written as its UTF-16 surrogate pair, as JSON spells it.
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _escape_format(text: str) -> str:
    if text.isascii():
        return text
    return "".join(_escaped(char) if is_format_char(char) else char for char in text)


def dumps(document: Any, *, indent: int | None = None) -> str:
    """Strict, valid JSON (one line unless ``indent``): unholdable numbers as ``null`` with their
    text in ``raw``, control and format characters escaped as ``\\uXXXX``."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(
        strict(document), ensure_ascii=False, allow_nan=False, separators=separators, indent=indent
    )
    # json.dumps escapes C0 itself; DEL, C1 and format characters can only occur inside strings,
    # so escaping them here keeps the JSON valid while no 8-bit control (0x9b is CSI) nor a
    # right-to-left override reaches a terminal raw.
    return _escape_format(_C1_OR_DEL.sub(lambda m: _escaped(m.group()), text))


# -- measuring -----------------------------------------------------------------------------
def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    """Terminal columns ``text`` takes (wide CJK characters count two)."""
    return sum(_char_width(char) for char in text)


def fit(text: str, columns: int) -> str:
    """``text`` cut to ``columns`` terminal columns, ending in ``...`` when cut."""
    if width(text) <= columns:
        return text
    out: list[str] = []
    used = 0
    for char in text:
        w = _char_width(char)
        if used + w > columns - 3:
            break
        out.append(char)
        used += w
    return "".join(out) + "..."[: max(0, columns - used)]


def pad(text: str, columns: int) -> str:
    text = fit(text, columns)
    return text + " " * (columns - width(text))


# -- values --------------------------------------------------------------------------------
def when(value: datetime | None) -> str:
    """``2024-05-01 12:00Z`` (UTC, to the minute)."""
    if value is None:
        return _MISSING
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def age(value: datetime, now: datetime) -> str:
    seconds = (now - value).total_seconds()
    if seconds < 0:
        return "in the future"
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86_400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86_400)} d ago"


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return _MISSING
    return f"{value:g}{unit}"


def _online(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def _sources(sources: Sequence[Source], now: datetime) -> str:
    parts = []
    for source in sources:
        label = f"{source.backend} ({source.kind.value}"
        if source.stale:
            label += f", cached {age(source.fetched_at, now)}"
        parts.append(label + ")")
    return ", ".join(parts)


# -- status --------------------------------------------------------------------------------
def status_json(view: DeviceView) -> str:
    return dumps(view.as_json())


def _pair(label: str, value: str, label2: str | None = None, value2: str | None = None) -> str:
    if label2 is None or value2 is None:
        return fit(f"{label:<11}{clean_line(value)}", WIDTH)
    left = pad(f"{label:<11}{clean_line(value)}", 35)
    return fit(f"{left}{label2:<11}{clean_line(value2)}", WIDTH)


def status_lines(view: DeviceView, now: datetime | None = None) -> list[str]:
    """A summary of one device that fits 80 columns."""
    now = now or datetime.now(UTC)
    d: Device = view.device
    last_seen = _MISSING if d.last_seen is None else f"{when(d.last_seen)} ({age(d.last_seen, now)})"
    location = _MISSING if d.location is None else f"{d.location.lat:.5f}, {d.location.lon:.5f}"
    lines = [
        fit(clean_line(f"{d.id}  {d.name or ''}".rstrip()), WIDTH),
        _pair("clouds", _sources(view.sources, now)),
        _pair("model", d.model or _MISSING, "firmware", d.firmware or _MISSING),
        _pair("online", _online(d.online), "last seen", last_seen),
        _pair("battery", _number(d.battery, "%"), "signal", _number(d.rssi, " dBm")),
        _pair("location", location, "group", d.group or _MISSING),
        _pair(
            "install",
            d.installation_status.value if d.installation_status else _MISSING,
            "status",
            d.status or _MISSING,
        ),
        _pair("alerts", ", ".join(d.alerts) if d.alerts else "none"),
    ]
    for backend, reason in view.errors.items():
        lines += _wrapped("not reached", f"{backend}: {reason}")
    return lines


def _wrapped(label: str, text: str) -> list[str]:
    """``label`` and ``text`` over as many lines as it takes: an error's fix is never cut off."""
    indent = " " * (len(label) + 1)
    rows = textwrap.wrap(
        clean_line(text), WIDTH, initial_indent=f"{label} ", subsequent_indent=indent, break_on_hyphens=False
    )
    return [fit(row, WIDTH) for row in rows]


# -- watch ---------------------------------------------------------------------------------
def sample_json(sample: TelemetrySample) -> str:
    return dumps(sample.model_dump(mode="json"))


def _metric(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return clean_line(value)


def sample_line(sample: TelemetrySample) -> str:
    metrics = " ".join(f"{clean_line(name)}={_metric(value)}" for name, value in sample.metrics.items())
    stamp = sample.timestamp.astimezone(UTC).strftime("%H:%M:%SZ")
    return f"{stamp} {clean_line(sample.backend)}  {metrics}"


def event_line(event: StreamEvent) -> str:
    return fit(f"-- {clean_line(event.backend)}: {event.kind.value}: {clean_line(event.message)}", WIDTH)


# -- tasks ---------------------------------------------------------------------------------
def tasks_json(device_id: str, tasks: Iterable[Task], sources: Sequence[Source]) -> str:
    return dumps(
        {
            "device": device_id,
            "tasks": [task.model_dump(mode="json") for task in tasks],
            "sources": [source.as_json() for source in sources],
        }
    )


_TASK_COLUMNS = (("BACKEND", 10), ("ID", 12), ("TYPE", 16), ("STATE", 10), ("UPDATED", 18))
#: A task id is what ``task cancel|delete`` take: it is shown whole (DeviceHQ's are 24 characters).
_TASK_ID_MAX = 40


def tasks_lines(tasks: Sequence[Task], sources: Sequence[Source], now: datetime | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    # Each column is as wide as its longest value plus a space (never glued to the next), at
    # most its share; the id is never cut, the detail takes what is left of the line.
    widths = [columns for _, columns in _TASK_COLUMNS]
    rows = [
        [clean_line(cell) for cell in (t.backend, t.id, t.type, t.state.value, when(t.updated or t.created))]
        for t in tasks
    ]
    for index, (title, columns) in enumerate(_TASK_COLUMNS):
        longest = max([width(title), *(width(row[index]) for row in rows)])
        limit = _TASK_ID_MAX if title == "ID" else max(columns, 20)
        widths[index] = min(longest, limit) + 1
    header = "".join(pad(title, w) for (title, _), w in zip(_TASK_COLUMNS, widths, strict=True)) + "DETAIL"
    lines = [header]
    for task, cells in zip(tasks, rows, strict=True):
        row = "".join(pad(cell, w - 1) + " " for cell, w in zip(cells, widths, strict=True))
        detail = clean_line(task.detail or "")
        room = WIDTH - width(row)
        if not detail or room >= 12:
            lines.append((row + fit(detail, max(room, 0))).rstrip())
        else:  # too little room left on the line: the detail goes under it
            lines.extend([row.rstrip(), fit("  " + detail, WIDTH)])
    if not tasks:
        lines.append("(no tasks)")
    lines.append(fit("from " + _sources(sources, now), WIDTH))
    return lines
