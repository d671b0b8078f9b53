"""The `:` line's hint names what a technician can type, and fits the box at 80 columns."""

from __future__ import annotations

from fieldtui.ui.commandline import COMMANDS, parse_command_line
from fieldtui.ui.modals.command_line import PLACEHOLDER


def test_the_hint_names_going_offline_and_online_and_fits_80_columns() -> None:
    words = PLACEHOLDER.split()
    assert "offline" in words and "online" in words
    for word in words:
        if word != "SERIAL":
            assert parse_command_line(word).name is not None, word
    # The box inside the modal at 80 columns shows 72 cells: the hint is never cut.
    assert len(PLACEHOLDER) <= 72
    named = {parse_command_line(w).name for w in words if w != "SERIAL"}
    views = {"outbox", "groups", "tasks", "alerts", "install", "device", "sync", "offline", "online", "quit"}
    assert named >= views and views <= set(COMMANDS)
