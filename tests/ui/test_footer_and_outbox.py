"""Footers offer what the view can do now and are never cut at 80 columns; the outbox shows
the target of each change and says why a queued change is held."""

from __future__ import annotations

from typing import Any

from fakes.fake_service import FakeService, Ids
from test_technician_navigation import SIZE, RecordingApp, ready
from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from textual.widgets._footer import FooterKey
from ui_helpers import wait_for

from fieldtui.ui.modals.command import CommandModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.outbox import OutboxScreen
from fieldtui.ui.widgets.confirm import ConfirmModal
from fieldtui.ui.widgets.footer import FooterEntry, fit_entries


def footer_words(app: Any) -> list[str]:
    return [key.description for key in app.screen.query(FooterKey)]


async def footer_settles(pilot: Pilot[Any], check: Any, what: str) -> None:
    await wait_for(pilot, lambda: bool(footer_words(pilot.app)) and check(footer_words(pilot.app)), what=what)


def footer_fits(app: Any) -> bool:
    keys = list(app.screen.query(FooterKey))
    return bool(keys) and all(key.region.right <= app.size.width for key in keys)


async def open_device(pilot: Pilot[Any], device: str) -> DeviceScreen:
    app = pilot.app
    app.go_to_device(device)
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, DeviceScreen) and app.screen.view is not None,
        what=f"device {device}",
    )
    screen = app.screen
    assert isinstance(screen, DeviceScreen)
    return screen


async def test_a_mysensor_device_offers_tasks_but_no_telemetry_status_move_or_command() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_device(pilot, Ids.SENSOR)
        await footer_settles(pilot, lambda words: "Tasks" in words, "the device's footer")
        words = footer_words(app)
        assert not {"Telemetry", "Status", "Move"} & set(words)
        assert footer_fits(app)
        await pilot.press("x")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, CommandModal)


async def test_a_things_device_offers_its_keys_and_help_within_80_columns() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_device(pilot, Ids.THING)
        await footer_settles(pilot, lambda words: "Telemetry" in words, "the device's footer")
        words = footer_words(app)
        assert {"Telemetry", "Status", "Move", "Help"} <= set(words)
        assert footer_fits(app)


async def test_read_only_hides_changes_and_never_opens_the_command_modal() -> None:
    app = RecordingApp(FakeService(read_only=True), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_device(pilot, Ids.THING)
        await footer_settles(pilot, lambda words: "Telemetry" in words, "the device's footer")
        assert not {"Status", "Move"} & set(footer_words(app))
        await pilot.press("x")
        await pilot.pause(0.3)
        assert isinstance(app.screen, DeviceScreen)


async def test_outbox_shows_the_target_and_why_a_change_is_held() -> None:
    fake = FakeService()
    first = await fake.writes.move_to_group(Ids.THING, "tower-lobby")
    await fake.writes.set_installation_status(Ids.THING, "uninstalled")
    fake.outbox.fail(first.id, "group is locked")
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.action_outbox()
        await wait_for(
            pilot, lambda: isinstance(app.screen, OutboxScreen) and app.screen.loaded, what="outbox"
        )
        screen = app.screen
        table = screen.query_one(DataTable)
        actions = [str(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert actions == ["group → tower-lobby", "status → uninstalled"]
        # The failed move: retry and drop are offered, apply anyway is not (not a conflict).
        await footer_settles(pilot, lambda words: "Retry" in words, "the failed row's keys")
        assert "Apply anyway" not in footer_words(app)
        table.move_cursor(row=1)
        detail = screen.query_one("#outbox-detail", Static)
        await wait_for(pilot, lambda: "Held: waits for" in str(detail.content), what="why it is held")
        assert "move TSPD04A1B00001234 to group tower-lobby" in str(detail.content)
        assert "Retry (r) or drop (d)" in str(detail.content)
        assert footer_fits(app)


def test_keys_that_do_not_fit_are_dropped_whole_app_keys_first() -> None:
    entries = [
        FooterEntry("t", "Telemetry", False, "telemetry"),
        FooterEntry("k", "Tasks", False, "tasks"),
        FooterEntry("F1/?", "Help", True, "help"),
        FooterEntry("^Q", "Quit", True, "quit"),
        FooterEntry("^O", "Outbox", True, "outbox"),
        FooterEntry("^G", "Groups", True, "groups"),
    ]
    widths = sum(e.cells for e in entries)
    assert fit_entries(entries, widths) == entries
    kept = fit_entries(entries, widths - 1)
    assert [e.action for e in kept] == ["telemetry", "tasks", "help", "quit", "outbox"]
    narrow = fit_entries(entries, 30)
    assert "help" in [e.action for e in narrow]
    assert sum(e.cells for e in narrow) <= 30


async def test_dropping_a_group_creation_warns_of_the_move_into_it() -> None:
    fake = FakeService()
    await fake.writes.create_group("things", "roof-2")
    await fake.writes.move_to_group(Ids.THING, "roof-2")
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.action_outbox()
        await wait_for(
            pilot, lambda: isinstance(app.screen, OutboxScreen) and app.screen.loaded, what="outbox"
        )
        screen = app.screen
        table = screen.query_one(DataTable)
        first = [str(table.get_row_at(i)[4]) for i in range(table.row_count)].index("new group roof-2")
        table.move_cursor(row=first)
        await footer_settles(pilot, lambda words: "Drop" in words, "the drop key")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the question")
        await pilot.pause(0.2)
        body = " ".join(str(s.content) for s in app.screen.query(Static))
        assert "Warning: 1 later change(s) rely on it: move TSPD04A1B00001234 to group roof-2" in body
        await pilot.press("n")
