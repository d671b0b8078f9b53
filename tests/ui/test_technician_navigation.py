"""Keys, help, palette, the `:` command line, dialogs and lookup filters as a technician meets
them at 80x24, over the in-memory service (tests/fakes)."""

from __future__ import annotations

from typing import Any

from fakes.fake_service import FakeService, Ids
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Markdown, OptionList, Static
from ui_helpers import wait_for

from fieldtui.core.actions import ActionType
from fieldtui.ui.app import FieldApp
from fieldtui.ui.index import DeviceRow, parse_query
from fieldtui.ui.modals.command import CommandModal
from fieldtui.ui.modals.command_line import CommandLineModal
from fieldtui.ui.modals.create_task import CreateTaskModal
from fieldtui.ui.modals.group_picker import GroupPickerModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.help import HelpScreen
from fieldtui.ui.screens.lookup import LookupScreen
from fieldtui.ui.screens.outbox import OutboxScreen
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZE = (80, 24)


class RecordingApp(FieldApp):
    """Keeps every notification's text (toasts expire before a test reads them)."""

    def __init__(self, fake: FakeService, **kwargs: Any) -> None:
        async def service() -> FakeService:
            return fake

        super().__init__(service, profile="site-a", **kwargs)
        self.notified: list[str] = []

    def notify(self, message: str, **kwargs: Any) -> None:  # type: ignore[override]
        self.notified.append(str(message))
        super().notify(message, **kwargs)


async def ready(pilot: Pilot[Any]) -> RecordingApp:
    app = pilot.app
    assert isinstance(app, RecordingApp)
    await wait_for(pilot, lambda: app.service is not None and len(app.index) > 0, what="the service")
    await pilot.pause()
    return app


def help_markdown(app: FieldApp) -> str:
    screen = app.screen
    assert isinstance(screen, HelpScreen)
    return screen.query_one("#help-markdown", Markdown).source


async def test_question_mark_on_home_opens_help_for_lookup_then_every_key() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, HelpScreen) and bool(app.screen.query("#help-markdown")),
            what="help",
        )
        text = help_markdown(app)
        assert text.startswith("# Lookup: this screen")
        assert text.index("Move marked") < text.index("# Every screen")
        # "?" was not typed into the search box behind the help.
        await pilot.press("escape")
        assert isinstance(app.screen, LookupScreen)
        assert app.screen.query_one("#query", Input).value == ""


async def test_help_scrolls_with_the_keyboard_at_80x24() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("f1")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, HelpScreen) and bool(app.screen.query("#help-markdown")),
            what="help",
        )
        area = app.screen.query_one("#help-text")
        await wait_for(pilot, lambda: area.max_scroll_y > 0, what="help longer than the screen")
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: area.scroll_y > 0, what="help scrolled down")
        await pilot.press("end")
        await wait_for(pilot, lambda: area.scroll_y == area.max_scroll_y, what="the end of help")


async def test_help_on_a_device_lists_the_device_keys_first() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.go_to_device(Ids.THING)
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device")
        await pilot.press("question_mark")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, HelpScreen) and bool(app.screen.query("#help-markdown")),
            what="help",
        )
        text = help_markdown(app)
        assert text.startswith("# Device: this screen")
        assert text.index("Telemetry") < text.index("# Every screen")


async def test_palette_command_outranks_a_device_with_the_same_word() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.index.upsert(DeviceRow(id="OUTBOX-7", name="Outbox room", clouds=("things",)))
        await pilot.press("ctrl+p")
        await pilot.press(*"Outbox")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, OutboxScreen), what="the outbox")


async def test_go_to_device_from_palette_escape_returns_to_lookup() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.action_outbox()
        await wait_for(pilot, lambda: isinstance(app.screen, OutboxScreen), what="the outbox")
        await pilot.press("ctrl+p")
        await pilot.press(*Ids.GATEWAY)
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, LookupScreen), what="back at the lookup")
        assert len(app.screen_stack) == 1


async def command(pilot: Pilot[Any], line: str) -> None:
    app = pilot.app
    await pilot.press("colon")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandLineModal), what="the command line")
    await pilot.press(*line, "enter")
    await pilot.pause()


async def test_colon_command_line_opens_views_devices_and_quits() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "outbox")
        await wait_for(pilot, lambda: isinstance(app.screen, OutboxScreen), what="the outbox")
        await command(pilot, f"device {Ids.SENSOR}")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device")
        assert [type(s) for s in app.screen_stack] == [LookupScreen, DeviceScreen]
        await command(pilot, "outbx")
        await wait_for(pilot, lambda: any("No command :outbx" in n for n in app.notified), what="the refusal")
        assert any(":outbox" in n and ":device" in n for n in app.notified)
        await command(pilot, "q")
        await wait_for(pilot, lambda: app._exit, what="the app to quit")


async def test_colon_inside_a_query_is_typed_not_a_command() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"cloud", "colon", *"things")
        assert app.screen.query_one("#query", Input).value == "cloud:things"
        assert isinstance(app.screen, LookupScreen)


async def test_confirmation_buttons_show_their_keys() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await app.push_screen(ConfirmModal("Cancel task?", "Cancel this task?", yes="Cancel", no="Keep"))
        await pilot.pause()
        labels = {str(b.id): b.label.plain for b in app.screen.query(Button)}
        assert labels == {"no": "Keep [n]", "yes": "Cancel [y]"}


async def test_command_and_task_dialogs_name_their_cancel_key() -> None:
    """`Cancel [esc]` was eaten as markup and read "Cancel": the key hint must show."""
    fake = FakeService()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await app.push_screen(CommandModal(Ids.THING))
        await pilot.pause()
        assert app.screen.query_one("#command-cancel", Button).label.plain == "Cancel [esc]"
        app.pop_screen()
        await app.push_screen(CreateTaskModal(Ids.SENSOR, list(fake.backends())))
        await pilot.pause()
        assert app.screen.query_one("#create-task-cancel", Button).label.plain == "Cancel [esc]"


async def open_picker(pilot: Pilot[Any]) -> GroupPickerModal:
    app = pilot.app
    assert isinstance(app, FieldApp)
    app.go_to_device(Ids.THING)
    await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device")
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the group picker")
    picker = app.screen
    assert isinstance(picker, GroupPickerModal)
    await wait_for(pilot, lambda: picker.loaded, what="the group list")
    return picker


async def test_group_picker_prefix_picks_the_existing_group() -> None:
    fake = FakeService()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_picker(pilot)
        await pilot.press(*"tower", "enter")
        await wait_for(pilot, lambda: bool(fake.outbox.records()), what="the move queued")
        (record,) = fake.outbox.records()
        assert record.action.type is ActionType.MOVE_TO_GROUP
        assert record.action.params["group"] == "tower-lobby"


async def test_group_picker_asks_before_creating_a_new_group() -> None:
    fake = FakeService()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        picker = await open_picker(pilot)
        await pilot.press(*"roof-2", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the question")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is picker, what="back in the picker")
        assert fake.outbox.records() == []
        assert "Not created" in str(picker.query_one("#group-picker-message", Static).content)
        options = picker.query_one("#group-options", OptionList)
        options.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: bool(fake.outbox.records()), what="the change queued")
        assert {r.action.params.get("group") for r in fake.outbox.records()} == {"roof-2"}


async def test_unknown_filter_values_are_named_with_the_valid_ones() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        summary = app.screen.query_one("#lookup-summary", Static)
        await pilot.press(*"cloud", "colon", *"bogus")
        await wait_for(pilot, lambda: "no cloud 'bogus'" in str(summary.content), what="the cloud named")
        assert "things" in str(summary.content) and "sensors" in str(summary.content)
        app.screen.query_one("#query", Input).value = "status:installd"
        await wait_for(pilot, lambda: "did you mean installed" in str(summary.content), what="the status")
        assert "quarantine" in str(summary.content)


async def test_group_names_with_spaces_filter_when_quoted() -> None:
    assert parse_query('group:"Plant room" 74').group == "Plant room"
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.index.upsert(DeviceRow(id="PR-1", name="pump", clouds=("fleet",), group="Plant room"))
        app.index.upsert(DeviceRow(id="PR-2", name="fan", clouds=("fleet",), group="Plant"))
        lookup = app.screen
        assert isinstance(lookup, LookupScreen)
        lookup.query_one("#query", Input).value = 'group:"Plant room"'
        await wait_for(pilot, lambda: [r.id for r in lookup._shown] == ["PR-1"], what="one match")


async def test_lookup_table_fits_80_columns_with_on_and_seen() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        table = app.screen.query_one("#results", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, what="rows")
        assert table.virtual_size.width <= table.scrollable_content_region.width
        labels = [str(column.label) for column in table.columns.values()]
        assert labels[-2:] == ["On", "Seen"]


async def test_back_from_a_device_the_next_scan_replaces_the_query() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*Ids.THING, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the first device")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, LookupScreen), what="the lookup")
        await pilot.press(*Ids.SENSOR, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the second device")
        screen = app.screen
        assert isinstance(screen, DeviceScreen)
        assert screen.device_id == Ids.SENSOR
        await pilot.pause(0.5)  # its first load ends before the app is torn down


def test_a_cut_group_or_name_keeps_the_end_that_tells_them_apart() -> None:
    from fieldtui.ui.text import clean_middle

    assert clean_middle("Group 003", 8) == "Grou…003"
    assert clean_middle("Group 003", 8) != clean_middle("Group 004", 8)
    assert clean_middle("Gateway 0012", 9) == "Gate…0012"
    assert clean_middle("lab", 8) == "lab"
    assert clean_middle("Tower gateway", 9) == "Tower ga…"
    assert clean_middle("a\x1b[31mb", 8) == "a�[31mb"


async def test_down_from_the_lookup_box_reaches_the_list() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"TSPD04")
        table = app.screen.query_one("#results", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, what="matches")
        await pilot.press("down")
        await wait_for(pilot, lambda: app.focused is table, what="the list focused")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device")
