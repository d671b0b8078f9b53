"""A yes/no modal for destructive or weighty choices (quarantine, retire, drop, cancel)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmModal(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n", "answer(False)", "No", id="confirm_no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm_cancel"),
    ]

    def __init__(self, title: str, body: str, *, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._yes = yes
        self._no = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(self._title, classes="modal-title")
            yield Static(self._body)
            with Horizontal(classes="modal-buttons"):
                # Labels are markup: the key hint is escaped, else "[n]" is read as a tag and
                # vanishes ("Keep / Cancel" with no hint of which key does what).
                yield Button(f"{escape(self._no)} \\[n]", id="no")
                yield Button(f"{escape(self._yes)} \\[y]", id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
