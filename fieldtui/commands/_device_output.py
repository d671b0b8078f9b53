"""What ``status`` adds for a person (each cloud's value where they disagree, the technician's
pending changes) and how ``history`` prints, for a terminal (80 columns) and as JSON."""

from __future__ import annotations

import textwrap
from typing import Any

from fieldtui.commands._output import WIDTH, clean_line, dumps, fit
from fieldtui.service.api import DeviceView, HistoryEntry, HistoryView
from fieldtui.service.merge import iso

_LABELS = {
    "name": "name",
    "model": "model",
    "firmware": "firmware",
    "online": "online",
    "group": "group",
    "installation_status": "install",
    "status": "status",
}


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return clean_line(value)


def _wrapped(label: str, text: str) -> list[str]:
    rows = textwrap.wrap(
        clean_line(text),
        WIDTH,
        initial_indent=f"{label:<9} ",
        subsequent_indent=" " * 10,
        break_on_hyphens=False,
    )
    return [fit(row, WIDTH) for row in rows]


def extra_status_lines(view: DeviceView) -> list[str]:
    """``differs  firmware: gateways 5.3.0 · things 2021.04`` and ``pending  install → ...``."""
    lines: list[str] = []
    for field, values in view.disagreements().items():
        each = " · ".join(f"{backend} {_plain(value)}" for backend, value in values.items())
        lines += _wrapped("differs", f"{_LABELS.get(field, field)}: {each}")
    for change in view.pending:
        target = f"{_LABELS.get(change.field or '', change.field)} → {change.value}" if change.field else ""
        lines += _wrapped("pending", f"{target or change.description} · {change.words()}")
    return lines


def _entry_json(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "timestamp": iso(entry.timestamp) if entry.timestamp else None,
        "backend": entry.backend,
        "kind": entry.kind.value,
        "summary": entry.summary,
        "who": entry.who,
        "state": entry.state,
        "detail": entry.detail,
    }


def history_json(history: HistoryView) -> str:
    return dumps(
        {
            "device": history.device,
            "entries": [_entry_json(e) for e in history.entries],
            "errors": history.errors,
        }
    )


def history_lines(history: HistoryView) -> list[str]:
    """Newest first, one entry a line (its detail wrapped under it), 80 columns."""
    if not history.entries:
        return ["(no history on these clouds)"]
    lines = []
    for entry in history.entries:
        stamp = entry.timestamp.strftime("%Y-%m-%d %H:%M") + "Z" if entry.timestamp else "(no time)        "
        head = f"{stamp} {clean_line(entry.backend):<9} {entry.kind.value:<12} {clean_line(entry.summary)}"
        extra = []
        if entry.state:
            extra.append(clean_line(entry.state))
        if entry.who:
            extra.append(f"by {clean_line(entry.who)}")
        if entry.detail:
            extra.append(clean_line(entry.detail))
        rows = textwrap.wrap(
            "  ".join([head, *extra]), WIDTH, subsequent_indent=" " * 18, break_on_hyphens=False
        )
        lines += [fit(row, WIDTH) for row in rows]
    return lines
