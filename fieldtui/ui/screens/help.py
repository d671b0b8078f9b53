"""The `?` screen: keys and filters, from help.md beside the UI package."""

from __future__ import annotations

from importlib import resources

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Markdown


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="help_close"),
        Binding("question_mark", "close", "Close", show=False, id="help_toggle"),
        Binding("q", "close", "Close", show=False, id="help_quit"),
    ]

    def compose(self) -> ComposeResult:
        text = resources.files("fieldtui.ui").joinpath("help.md").read_text(encoding="utf-8")
        yield Markdown(text, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
