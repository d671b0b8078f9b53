"""Telemetry messages read whole: the log cuts long lines at the edge, this wraps them."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class MessageViewModal(ModalScreen[None]):
    """The newest messages last, each whole (wrapped); arrows and PgUp/PgDn scroll."""

    BINDINGS = [Binding("escape,v", "close", "Close", id="message_view_close")]

    def __init__(self, title: str, lines: Sequence[str]) -> None:
        super().__init__()
        self._title = title
        self._lines = list(lines)

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="message-view"):
            yield Static(self._title, classes="modal-title")
            with VerticalScroll(id="message-view-lines"):
                body = Text("\n".join(self._lines) if self._lines else "No message yet.")
                yield Static(body, id="message-view-text")
            yield Static("↑↓ PgUp PgDn scroll · Esc closes", classes="summary")

    def on_mount(self) -> None:
        area = self.query_one("#message-view-lines", VerticalScroll)
        area.focus()
        area.scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
