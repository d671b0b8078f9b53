"""A new group's id (and description), or a group's new id, checked against the cloud's
declared rules before anything is queued."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from fieldtui.service.api import GroupRules


def id_placeholder(rules: GroupRules) -> str:
    """``group id: no spaces, not 'unassigned'``: the rules a technician should know while typing."""
    limits = (["no spaces"] if rules.no_spaces else []) + (
        [f"not {rules.reserved!r}"] if rules.reserved else []
    )
    return "group id" + (": " + ", ".join(limits) if limits else "")


class GroupNameModal(ModalScreen[tuple[str, str | None] | None]):
    """Dismisses with (id, description) — description None when not asked or left empty."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="group_name_cancel")]

    def __init__(
        self,
        title: str,
        *,
        rules: GroupRules,
        existing: Iterable[str],
        initial: str = "",
        describe: bool = True,
    ) -> None:
        super().__init__()
        self._title = title
        self._rules = rules
        self._existing = set(existing)
        self._initial = initial
        self._describe = describe

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="group-name"):
            yield Static(self._title, classes="modal-title")
            yield Input(value=self._initial, placeholder=id_placeholder(self._rules), id="group-id")
            if self._describe:
                yield Input(placeholder="description (optional)", id="group-description")
            yield Static("", id="group-name-message", classes="inline-message")
            with Horizontal(classes="modal-buttons"):
                # Labels are markup: the key hints are escaped, else "[esc]" is read as a tag.
                yield Button("Cancel \\[esc]", id="cancel")
                yield Button("OK \\[enter]", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#group-id", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "group-id" and self._describe:
            self.query_one("#group-description", Input).focus()
            return
        self._finish()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._finish()
        else:
            self.dismiss(None)

    def _finish(self) -> None:
        group = self.query_one("#group-id", Input).value.strip()
        if self._initial and group == self._initial:
            problem: str | None = f"That is its id now: type the new id (Escape keeps {group!r})."
        else:
            problem = self._rules.problem(group, self._existing)
        if problem is not None:
            self.query_one("#group-name-message", Static).update(Text(problem, style="bold"))
            self.query_one("#group-id", Input).focus()
            return
        description = None
        if self._describe:
            description = self.query_one("#group-description", Input).value.strip() or None
        self.dismiss((group, description))

    def action_cancel(self) -> None:
        self.dismiss(None)
