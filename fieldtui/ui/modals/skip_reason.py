"""Why a guided-installation step is skipped: the reason is kept in the summary."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class SkipReasonModal(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="skip_cancel")]

    def __init__(self, step_title: str) -> None:
        super().__init__()
        self.step_title = step_title

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="skip-reason"):
            yield Static(f"Skip “{self.step_title}”", classes="modal-title")
            yield Static("Why? The reason is kept in the installation summary.")
            yield Input(placeholder="e.g. no signal in the basement", id="skip-reason-input")
            yield Static("", id="skip-reason-message", classes="inline-message")
            yield Static("Enter skips · Esc goes back to the step", classes="summary")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if not reason:
            self.query_one("#skip-reason-message", Static).update("A reason is needed to skip a step.")
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)
