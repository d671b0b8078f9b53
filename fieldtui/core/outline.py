"""Plain JSON (a cloud's details) as indented lines a person reads: the CLI prints them, the
app lists them (a line too long for the screen opens whole).

Rules: a mapping's scalars read ``key: value``; a nested mapping is a heading with its lines
indented; a list of scalars is one comma-separated line; a list of flat mappings is one line
per item (``- key=value, ...``); booleans read yes/no, nothing reads ``—``; a count of bytes
(a key ending in ``_bytes``) reads in B/kB/MB/GB with the exact count. Every line is free of
control characters (a cloud's words never drive the terminal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fieldtui.core.text import strip_controls

INDENT = "  "


@dataclass(frozen=True, slots=True)
class OutlineLine:
    depth: int
    text: str

    def render(self) -> str:
        return INDENT * self.depth + self.text


def title(section: str) -> str:
    """``space_info`` -> ``Space info``."""
    words = strip_controls(section).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit} ({count})"
        size /= 1000
    return f"{count} B"  # pragma: no cover - the loop always returns


def scalar(value: Any, key: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and key.endswith("_bytes"):
        return human_bytes(value)
    if isinstance(value, float):
        return repr(value)
    return strip_controls(str(value))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _flat(value: Any) -> bool:
    return isinstance(value, Mapping) and all(_is_scalar(v) for v in value.values())


def outline(value: Any, depth: int = 0) -> list[OutlineLine]:
    """``value`` as lines (see the module doc)."""
    lines: list[OutlineLine] = []
    if isinstance(value, Mapping):
        if not value:
            return [OutlineLine(depth, "(nothing)")]
        for raw_key, item in value.items():
            key = str(raw_key)
            label = strip_controls(key)
            if _is_scalar(item):
                lines.append(OutlineLine(depth, f"{label}: {scalar(item, key)}"))
            elif (
                isinstance(item, Sequence) and not isinstance(item, str) and all(_is_scalar(v) for v in item)
            ):
                lines.append(
                    OutlineLine(depth, f"{label}: {', '.join(scalar(v, key) for v in item) or '(none)'}")
                )
            else:
                count = f" ({len(item)})" if isinstance(item, Sequence) else ""
                lines.append(OutlineLine(depth, f"{label}:{count}"))
                lines.extend(outline(item, depth + 1))
        return lines
    if isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            return [OutlineLine(depth, "(none)")]
        for item in value:
            if _flat(item):
                pairs = ", ".join(f"{strip_controls(str(k))}={scalar(v, str(k))}" for k, v in item.items())
                lines.append(OutlineLine(depth, f"- {pairs}"))
            elif _is_scalar(item):
                lines.append(OutlineLine(depth, f"- {scalar(item)}"))
            else:
                lines.append(OutlineLine(depth, "-"))
                lines.extend(outline(item, depth + 1))
        return lines
    return [OutlineLine(depth, scalar(value))]


__all__ = ["OutlineLine", "human_bytes", "outline", "scalar", "title"]
