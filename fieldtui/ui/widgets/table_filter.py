"""The `/` filter above a table: hidden until asked for, Enter keeps it, Escape clears it."""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


def matches(query: str, cells: Iterable[str]) -> bool:
    """True when every word of ``query`` appears (case-insensitive) in one of ``cells``."""
    words = query.lower().split()
    if not words:
        return True
    haystack = " ".join(cells).lower()
    return all(word in haystack for word in words)


class TableFilter(Input):
    BINDINGS = [Binding("escape", "clear", "Clear filter", id="table_filter_clear")]

    class Closed(Message):
        """The technician is done typing: the screen gives the focus back to its table."""

    def __init__(
        self, *, placeholder: str = "Filter: words to match (Esc clears)", id: str | None = None
    ) -> None:
        super().__init__(placeholder=placeholder, id=id, classes="table-filter")
        self.display = False

    def open(self) -> None:
        self.display = True
        self.focus()

    def action_clear(self) -> None:
        self.value = ""
        self.display = False
        self.post_message(self.Closed())

    def _on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is not self:
            return
        if not self.value.strip():
            self.display = False
        self.post_message(self.Closed())
