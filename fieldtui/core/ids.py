"""Ids are data, never paths: one rule for what a typed or scanned id may hold.

An id ends up as one segment of a URL path (or one level of an MQTT topic), in the outbox and
in the read cache. Input that would change where a request goes (``/``, ``?``, ``#``, a bare
``.`` or ``..``), that a terminal or a topic cannot carry (control and invisible format
characters) or that no vendor uses inside an id (inner whitespace) is refused here, before
anything is queued, cached or sent. Surrounding whitespace is removed, as every connector does
(a scanner's trailing newline is not part of the serial).

The one normalisation a vendor document defines is kept: document 002 (DeviceHQ) says a UUID
"must contain exactly 32 hexadecimal characters", that "any whitespace or non-alphanumeric
characters will be stripped" and that it "is not case sensitive". Input that is such a UUID
once cleaned is accepted in its cleaned form, whatever separators it was written with.
"""

from __future__ import annotations

import re
import unicodedata

from fieldtui.core.errors import InvalidId

#: Characters that end or split a URL path segment.
_PATH_CHARACTERS = "/?#"
#: Document 002's UUID rule: 32 hex digits once every non-alphanumeric character is removed.
_UUID_HEX = re.compile(r"[0-9a-f]{32}")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
#: Longest piece of a refused id quoted back in a message.
_SHOWN = 60


def _shown(value: str) -> str:
    """``value`` quoted for a message: control characters as escapes, cut when long."""
    text = value if len(value) <= _SHOWN else value[: _SHOWN - 3] + "..."
    return "'" + "".join(_escape(ch) for ch in text) + "'"


def _escape(ch: str) -> str:
    if ch.isprintable() and ch != "'":
        return ch
    if ch == "'":
        return "\\'"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _invisible(ch: str) -> bool:
    """Control (Cc) and format (Cf: zero-width, bidi overrides) characters, and separators
    that are not plain spaces."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")


def devicehq_uuid(value: str) -> str | None:
    """The 32-hex UUID ``value`` names under document 002's rule, else None."""
    cleaned = _NON_ALNUM.sub("", value).lower()
    return cleaned if _UUID_HEX.fullmatch(cleaned) else None


def problem(value: str, *, what: str = "device id") -> str | None:
    """Why ``value`` (already stripped) cannot be used as a ``what``, or None when it can."""
    if not value:
        return f"the {what} is empty"
    shown = _shown(value)
    hidden = sorted({ch for ch in value if _invisible(ch)})
    if hidden:
        names = ", ".join(_escape(ch) for ch in hidden)
        return f"{what} {shown} contains control characters ({names})"
    if any(ch.isspace() for ch in value):
        return f"{what} {shown} contains whitespace"
    found = [ch for ch in _PATH_CHARACTERS if ch in value]
    if found:
        listed = " ".join(repr(ch) for ch in found)
        return f"{what} {shown} contains {listed}: an id is one name, not a path or a query"
    if value in (".", ".."):
        return f"{what} {shown} is a path step, not an id"
    return None


def valid_id(value: str, *, what: str = "device id") -> str:
    """``value`` as it will be used (surrounding whitespace removed), or :class:`InvalidId`.

    A DeviceHQ UUID written with separators that would otherwise be refused (spaces, slashes)
    comes back as its 32 cleaned hex digits, as document 002 defines.
    """
    stripped = value.strip()
    why = problem(stripped, what=what)
    if why is None:
        return stripped
    uuid = devicehq_uuid(stripped)
    if uuid is not None and not any(_invisible(ch) for ch in stripped):
        return uuid
    raise InvalidId(why, hint=f"type the {what} exactly as the cloud shows it")


def valid_name(value: str, *, what: str = "group") -> str:
    """A free-text name sent as data (in a request body, never a path; DeviceHQ's groups are
    "arbitrary strings"): only emptiness and control or invisible characters are refused, and
    the name is kept as typed."""
    if not value.strip():
        raise InvalidId(f"the {what} is empty")
    hidden = sorted({ch for ch in value if _invisible(ch)})
    if hidden:
        names = ", ".join(_escape(ch) for ch in hidden)
        raise InvalidId(f"{what} {_shown(value)} contains control characters ({names})")
    return value


__all__ = ["devicehq_uuid", "problem", "valid_id", "valid_name"]
