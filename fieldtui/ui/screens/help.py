"""The `?` screen: the keys of the screen it was opened from first, then every app-wide key
and the lookup filters (help.md beside the UI package). Scrolls with the keyboard."""

from __future__ import annotations

from importlib import resources
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown

from fieldtui.ui.crumbs import screen_title


def _cell(text: str) -> str:
    """Backticks in a key or description would break the Markdown."""
    return text.replace("`", "'")


def screen_keys(screen: Screen[Any]) -> str:
    """The screen's own keys as a Markdown list (one line each), remapped keys as remapped. Every one is
    listed (a letter the focused search box takes too); one the screen refuses now is marked."""
    app = screen.app
    bindings = screen._bindings.copy()
    if app._keymap:
        bindings.apply_keymap(app._keymap)
    active = {a.binding.id: a for a in screen.active_bindings.values() if a.node is screen}
    every = [binding for _key, binding in bindings]
    rows: list[str] = []
    seen: set[str] = set()
    for binding in every:
        # Textual's own bindings (Tab, copy) carry no id: the screen's keys all do.
        name = binding.id
        if name is None or not binding.description or name in seen:
            continue
        seen.add(name)
        does = binding.description
        state = active.get(binding.id)
        if state is not None and not state.enabled:
            does += " (not here now)"
        if state is not None and state.tooltip:
            does += f" — {state.tooltip}"
        keys = " ".join(f"`{_cell(app.get_key_display(b))}`" for b in every if b.id == name)
        rows.append(f"- {keys} {_cell(does)}")
    if not rows:
        return ""
    return "\n".join(rows) + "\n"


def help_text(screen: Screen[Any] | None) -> str:
    general = resources.files("fieldtui.ui").joinpath("help.md").read_text(encoding="utf-8")
    if screen is None:
        return general
    parts = [f"# {screen_title(screen)}: this screen\n"]
    if screen.HELP:
        parts.append(screen.HELP.strip() + "\n")
    keys = screen_keys(screen)
    if keys:
        parts.append(keys)
    parts.append(general)
    return "\n".join(parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="help_close"),
        Binding("question_mark,f1", "close", "Close", show=False, id="help_toggle"),
        Binding("q", "close", "Close", show=False, id="help_quit"),
        Binding("j", "scroll('down')", "Down", show=False, id="help_down"),
        Binding("k", "scroll('up')", "Up", show=False, id="help_up"),
        Binding("space", "scroll('page_down')", "Page down", show=False, id="help_page"),
    ]

    def __init__(self, screen: Screen[Any] | None = None) -> None:
        super().__init__()
        self._text = help_text(screen)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-text"):
            yield Markdown(self._text, id="help-markdown")

    def on_mount(self) -> None:
        # The scroll area has the focus: arrows, PgUp/PgDn, Home/End scroll it at once.
        self.query_one("#help-text", VerticalScroll).focus()

    def action_scroll(self, where: str) -> None:
        area = self.query_one("#help-text", VerticalScroll)
        if where == "down":
            area.scroll_down(animate=False)
        elif where == "up":
            area.scroll_up(animate=False)
        else:
            area.scroll_page_down(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
