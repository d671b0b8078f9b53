"""Untrusted text made safe for a terminal: one rule for the CLI, its errors and the app.

A device name, group description or error detail from a cloud may carry escape sequences
(``"\\x1b]52;..."`` writes the clipboard, ``"\\x1b[2J"`` clears the screen). Every C0 control
but newline, DEL and every C1 control (0x9b is a one-byte CSI) is removed before display.

Unicode format characters (category Cf) go the same way: a right-to-left override (U+202E)
makes ``"txt.exe"`` read ``"exe.txt"`` and reorders the rest of the line, isolates
(U+2066..U+2069) and zero-width characters (U+200B..U+200F) hide or reorder text a technician
must be able to trust, such as a device id to compare with a label.
"""

from __future__ import annotations

import re
import unicodedata

CONTROL_CHARS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def is_format_char(char: str) -> bool:
    """True for a Unicode format character (bidi controls, zero-width characters, BOM, tags)."""
    return unicodedata.category(char) == "Cf"


def _strip_format(text: str, replacement: str) -> str:
    # Asked per character of the Unicode database Python ships, so every Cf character it knows
    # is caught, not a hand-kept list; ASCII text (the common case) has none and is skipped.
    if text.isascii():
        return text
    return "".join(replacement if unicodedata.category(char) == "Cf" else char for char in text)


def strip_controls(text: object, replacement: str = "") -> str:
    """``text`` as a string with control and format characters (newline aside) replaced; tabs
    become spaces."""
    return _strip_format(CONTROL_CHARS.sub(replacement, str(text).replace("\t", " ")), replacement)
