"""A barcode scanner is a keyboard that types fast: tell its bursts from a technician's keys.

A wedge scanner sends a serial's characters a few milliseconds apart and then Enter; a person
never presses two keys within :data:`BURST_GAP` of each other. The first character of a burst is
let through at once (a person's single key has no delay); the following ones are held while
they keep coming fast. Enter ends a burst of at least :data:`MIN_SCAN` characters as a scan; a
pause ends it otherwise, and the held keys are let through in order, as if never held.

Pure logic with the clock passed in: the app feeds it keys and acts on what it answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

#: Keys closer together than this are a machine typing (USB scanners: 1-10 ms per character).
BURST_GAP = 0.015
#: Enter may follow the last character a little later (some scanners add a suffix delay).
ENTER_GAP = 0.1
#: Shorter bursts are not serials (two keys typed together by accident).
MIN_SCAN = 4
#: The characters of an id a scanner types (ids are one word: no spaces, no '/', '?', '#').
_ID_CHARACTER = re.compile(r"[A-Za-z0-9._:\-]")

K = TypeVar("K")


class Verdict(Enum):
    #: Handle the key now, as usual.
    PASS = "pass"
    #: Keep the key back: it may be part of a scan.
    HOLD = "hold"
    #: The key is the Enter ending a scan: open :attr:`ScanDetector.scanned`.
    SCAN = "scan"


@dataclass
class ScanDetector(Generic[K]):
    """Feed every key with its character and arrival time; held keys come back from
    :meth:`release` when the burst turns out not to be a scan."""

    text: str = ""
    held: list[K] = field(default_factory=list)
    last: float | None = None
    scanned: str = ""

    def feed(self, key: K, name: str, character: str | None, now: float) -> Verdict:
        fast = self.last is not None and now - self.last <= BURST_GAP
        if name == "enter":
            ends_burst = self.last is not None and now - self.last <= ENTER_GAP
            if ends_burst and len(self.text) >= MIN_SCAN and self.held:
                self.scanned, self.text, self.held, self.last = self.text, "", [], None
                return Verdict.SCAN
            # Not a scan: the caller lets any held keys through before this Enter.
            self.text, self.last = "", None
            return Verdict.PASS
        if character is None or not _ID_CHARACTER.fullmatch(character):
            self.text, self.last = "", None
            return Verdict.PASS
        self.last = now
        if fast and self.text:
            self.text += character
            self.held.append(key)
            return Verdict.HOLD
        # A new first character: anything still held belongs to an earlier burst (the caller
        # lets it through first).
        self.text = character
        return Verdict.PASS

    def in_burst(self, now: float) -> bool:
        """True while characters keep coming fast (the focus may move under a burst: its
        first key can open a screen; the rest still belong to the scan)."""
        return bool(self.text) and self.last is not None and now - self.last <= ENTER_GAP

    def due(self, now: float) -> bool:
        """True when held keys have waited past a burst's end (the caller then releases them)."""
        return bool(self.held) and (self.last is None or now - self.last > ENTER_GAP)

    def release(self) -> list[K]:
        """The held keys, in order, to be handled as ordinary keys; the burst is over."""
        held, self.held = self.held, []
        return held
