"""The always-visible bar: profile, each backend's connectivity, outbox counts, last sync, read-only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from fieldtui.ui.crumbs import crumbs
from fieldtui.ui.text import age, clean, now

STATE_STYLE = {
    "online": ("●", "green"),
    "offline": ("○", "red"),
    "auth_error": ("✗", "magenta"),
    "degraded": ("◐", "yellow"),
    "unknown": ("?", "grey50"),
}


@dataclass
class BarState:
    profile: str = ""
    backends: dict[str, str] = field(default_factory=dict)
    pending: int = 0
    failed: int = 0
    conflicts: int = 0
    last_sync: datetime | None = None
    #: Why the last background sync could not send (None when it went through).
    sync_error: str | None = None
    read_only: bool = False
    offline_mode: bool = False


class StatusBar(Static):
    """One line; redrawn only when its state changes."""

    state: reactive[BarState] = reactive(BarState, always_update=True)

    def render(self) -> Text:
        s = self.state
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {clean(s.profile) or '-'} ", style="bold reverse")
        if s.read_only:
            text.append(" READ-ONLY ", style="bold black on yellow")
        if s.offline_mode:
            text.append(" OFFLINE ", style="bold white on red")
        text.append(" ")
        for name, status in s.backends.items():
            glyph, colour = STATE_STYLE.get(status, STATE_STYLE["unknown"])
            text.append(f"{glyph}", style=colour)
            text.append(f"{clean(name)} ")
        text.append("│ outbox ", style="dim")
        text.append(f"{s.pending}", style="bold" if s.pending else "dim")
        if s.failed:
            text.append(f" ✗{s.failed}", style="bold red")
        if s.conflicts:
            text.append(f" ⚠{s.conflicts}", style="bold yellow")
        text.append(" │ sync ", style="dim")
        text.append(age(s.last_sync, now()) if s.last_sync else "never", style="dim")
        if s.sync_error and s.pending:
            text.append(" ⚠ sync failing", style="bold yellow")
        path = crumbs(list(self.app.screen_stack), self.screen) if self.is_attached else ""
        self.set_class(bool(path), "-crumbs")
        if path:
            # A second line, below the state: where this screen is, from the lookup down.
            text.append("\n " + path, style="bold")
        return text
