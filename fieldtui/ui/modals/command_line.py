"""The ``:`` prompt at the bottom of the screen (as in k9s and vim): Enter runs, Escape closes."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Input, Static

#: What fits in 80 columns; an unknown command lists them all.
PLACEHOLDER = "outbox groups tasks alerts install device SERIAL sync offline online q"


class CommandLineModal(ModalScreen[str | None]):
    """Returns the typed line (without the colon), or None when closed with Escape."""

    BINDINGS = [Binding("escape", "close", "Close", id="command_line_close")]

    def compose(self) -> ComposeResult:
        with Horizontal(id="command-line"):
            yield Static(":", id="command-line-colon")
            yield Input(placeholder=PLACEHOLDER, id="command-line-input")

    def on_mount(self) -> None:
        self.query_one("#command-line-input", Input).focus()

    @on(Input.Submitted, "#command-line-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_close(self) -> None:
        self.dismiss(None)
