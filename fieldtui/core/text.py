"""Untrusted text made safe for a terminal: one rule for the CLI, its errors and the app.

A device name, group description or error detail from a cloud may carry escape sequences
(``"\\x1b]52;..."`` writes the clipboard, ``"\\x1b[2J"`` clears the screen). Every C0 control
but newline, DEL and every C1 control (0x9b is a one-byte CSI) is removed before display.
"""

from __future__ import annotations

import re

CONTROL_CHARS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: object, replacement: str = "") -> str:
    """``text`` as a string with control characters (newline aside) replaced; tabs become spaces."""
    return CONTROL_CHARS.sub(replacement, str(text).replace("\t", " "))
