"""A status's meaning that wraps in the modal continues under itself, not under the number."""

from __future__ import annotations

from fakes.fake_service import FakeService, Ids
from rich.console import Console
from test_footer_and_outbox import open_device
from test_technician_navigation import SIZE, RecordingApp, ready
from textual.widgets import OptionList
from ui_helpers import wait_for

from fieldtui.ui.screens.status import StatusModal


async def test_a_wrapped_meaning_is_indented_under_its_first_word() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_device(pilot, Ids.THING)
        await pilot.press("s")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, StatusModal) and bool(app.screen.query("#status-options")),
            what="the status modal",
        )
        options = app.screen.query_one("#status-options", OptionList)
        prompt = options.get_option("uninstalled").prompt
        console = Console(width=44, record=True, color_system=None)
        console.print(prompt)
        lines = console.export_text().splitlines()
        assert len(lines) >= 2, lines
        assert lines[0].startswith("  3 uninstalled  Uninstalled")
        meaning_column = lines[0].index("Uninstalled")
        assert all(line[:meaning_column].strip() == "" for line in lines[1:]), lines
        await pilot.press("escape")
