"""Group moves and the groups screen, driven by keys over the in-memory port (the test plays the
clouds: ``auto_apply`` is a cloud that takes each change at once)."""

from __future__ import annotations

from typing import Any

from fakes.fake_service import FakeService, Ids
from textual.widgets import DataTable, Input, OptionList, Static
from ui_helpers import notifications, press_from_lookup, service_ready, wait_for

from fieldtui.core.actions import ActionState
from fieldtui.service.api import BackendState
from fieldtui.ui.modals.group_name import GroupNameModal
from fieldtui.ui.modals.group_picker import GroupPickerModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.groups import GroupsScreen
from fieldtui.ui.screens.lookup import LookupScreen
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZE = (100, 30)


def group_of(fake: FakeService, device: str) -> str | None:
    return fake.cloud.copies[device]["things"].group


def states(fake: FakeService) -> dict[str, int]:
    """How many of the outbox's actions are in each state."""
    counts: dict[str, int] = {}
    for record in fake.outbox.records():
        counts[record.state.value] = counts.get(record.state.value, 0) + 1
    return counts


async def open_device(pilot: Any, device_id: str) -> DeviceScreen:
    app = pilot.app
    await service_ready(pilot)
    query = app.screen.query_one("#query", Input)
    query.focus()
    query.value = device_id  # pasted
    await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, DeviceScreen) and app.screen.view is not None,
        what=f"device {device_id}",
    )
    screen = app.screen
    assert isinstance(screen, DeviceScreen)
    return screen


async def pick(pilot: Any, group: str) -> GroupPickerModal:
    app = pilot.app
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the group picker")
    picker = app.screen
    assert isinstance(picker, GroupPickerModal)
    await wait_for(pilot, lambda: picker.loaded, what="the group list")
    await pilot.press(*group)
    return picker


async def test_group_id_rules_say_why_as_each_cloud_declares_them(make_fake_app: Any) -> None:
    app = make_fake_app(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        things = app.service.backend("things").group_rules
        assert "spaces" in (things.problem("roof 2") or "")
        assert "'roof-2'" in (things.problem("roof 2") or "")
        assert "reserved" in (things.problem("unassigned") or "")
        assert "already exists" in (things.problem("roof", {"roof"}) or "")
        assert things.problem("") is not None
        assert things.problem("roof-2") is None
        # Only things reserve "unassigned"; DeviceHQ groups are names typed on each device.
        gateways = app.service.backend("gateways").group_rules
        assert gateways.problem("unassigned") is None
        assert gateways.management_refused
        assert app.service.backend("live").group_rules is None


async def test_move_two_marked_devices_from_lookup_syncs(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        lookup = app.screen
        assert isinstance(lookup, LookupScreen)
        lookup.query_one("#query", Input).value = "TSPD04"
        await wait_for(pilot, lambda: len(lookup._shown) == 2, what="the two things devices")
        assert [row.id for row in lookup._shown] == [Ids.THING, Ids.ALERTING]
        table = lookup.query_one("#results", DataTable)
        table.focus()
        for device in (Ids.THING, Ids.ALERTING):
            table.move_cursor(row=[row.id for row in lookup._shown].index(device))
            await pilot.press("space")
        assert lookup.marked == {Ids.THING, Ids.ALERTING}
        await pick(pilot, "tower-lobby")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("2 synced" in n for n in notifications(app)), what="the summary")
        assert group_of(fake, Ids.THING) == group_of(fake, Ids.ALERTING) == "tower-lobby"
        assert states(fake) == {"done": 2}


async def test_create_group_refuses_whitespace_then_creates_and_moves(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await open_device(pilot, Ids.THING)
        picker = await pick(pilot, "roof top")
        await pilot.press("enter")
        message = str(picker.query_one("#group-picker-message", Static).content)
        assert "cannot contain spaces" in message and "'roof-top'" in message
        assert states(fake) == {}
        assert app.screen is picker
        await pilot.press("ctrl+u", *"unassigned")
        options = picker.query_one("#group-options", OptionList)
        offered = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert offered == ["group:unassigned"]  # picked from the list, never created
        await pilot.press("ctrl+u")
        await pilot.press(*"roof-top", "enter", "y")  # a new group is confirmed first
        await wait_for(pilot, lambda: group_of(fake, Ids.THING) == "roof-top", what="the move")
        assert any(g.id == "roof-top" for g in fake.cloud.groups["things"])


async def test_groups_screen_lists_filters_and_shows_members(make_fake_app: Any) -> None:
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        await press_from_lookup(pilot, "g")
        await wait_for(
            pilot, lambda: isinstance(app.screen, GroupsScreen) and bool(app.screen.rows), what="groups"
        )
        screen = app.screen
        things_rows = [r for r in screen.rows if r.backend == "things"]
        assert {r.id for r in things_rows} == {"plant-roof", "depot-basement", "tower-lobby"}
        await pilot.press("slash", *"plant-roof", "enter")
        assert [r.id for r in screen.shown] == ["plant-roof"]
        screen.query_one("#groups-table", DataTable).focus()
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                screen.members_of is not None
                and "loading" not in str(screen.query_one("#members-title", Static).content)
            ),
            what="members",
        )
        assert [m.id for m in screen.members] == [Ids.THING]


async def test_group_create_rename_delete_from_groups_screen(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        await press_from_lookup(pilot, "g")
        await wait_for(
            pilot, lambda: isinstance(app.screen, GroupsScreen) and bool(app.screen.rows), what="groups"
        )
        screen = app.screen
        screen.query_one("#groups-table", DataTable).focus()
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupNameModal), what="the name modal")
        await pilot.press(*"new one", "enter", "enter")
        assert "spaces" in str(app.screen.query_one("#group-name-message", Static).content)
        await pilot.press("ctrl+u", *"lobby-77", "enter", *"Lobby sensors", "enter")
        await wait_for(pilot, lambda: any(r.id == "lobby-77" for r in screen.rows), what="the new group")
        screen.query_one("#groups-filter").value = "lobby-77"
        await pilot.pause()
        screen.query_one("#groups-table", DataTable).focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupNameModal), what="the rename modal")
        await pilot.press("ctrl+u", *"lobby-78", "enter")
        await wait_for(pilot, lambda: any(r.id == "lobby-78" for r in screen.rows), what="the renamed group")
        screen.query_one("#groups-filter").value = "lobby-78"
        await pilot.pause()
        screen.query_one("#groups-table", DataTable).focus()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        await pilot.press("n")
        assert any(r.id == "lobby-78" for r in screen.rows)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: not any(r.id == "lobby-78" for r in screen.rows), what="the deletion")
        assert states(fake) == {"done": 3}
        assert not any(g.id.startswith("lobby-") for g in fake.cloud.groups["things"])


async def test_group_picker_search_narrows_the_list(make_fake_app: Any) -> None:
    app = make_fake_app(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await open_device(pilot, Ids.THING)
        picker = await pick(pilot, "depot-basement")
        options = picker.query_one("#group-options", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids == ["group:depot-basement"]


async def test_move_while_cloud_unreachable_queues_then_syncs_when_back(make_fake_app: Any) -> None:
    fake = FakeService(auto_apply=True)
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await open_device(pilot, Ids.THING)
        fake.connectivity.set_state("things", BackendState.OFFLINE)
        await pick(pilot, "tower-lobby")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: any(n.startswith(f"Move {Ids.THING}") for n in notifications(app)),
            what="the first attempt",
        )
        assert "1 queued" in next(n for n in notifications(app) if n.startswith(f"Move {Ids.THING}"))
        assert group_of(fake, Ids.THING) == "plant-roof"
        fake.connectivity.set_state("things", BackendState.ONLINE)
        fake.apply_pending()  # the cloud is back: the sync engine sends what waited
        await wait_for(
            pilot,
            lambda: "tower-lobby" in str(app.screen.query_one("#device-facts", Static).content),
            what="the new group on screen",
        )
        assert group_of(fake, Ids.THING) == "tower-lobby"


async def test_move_of_a_device_moved_meanwhile_is_a_conflict(make_fake_app: Any) -> None:
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await open_device(pilot, Ids.THING)
        assert app.index.get(Ids.THING).group == "plant-roof"
        await pick(pilot, "tower-lobby")
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(fake.outbox.records()), what="the move queued")
        (record,) = fake.outbox.records()
        # Queued with what the technician saw, so the cloud can tell it moved meanwhile.
        assert record.action.precondition == {"group": "plant-roof"}
        fake.conflict(record.id, "the device is in depot-basement now")
        await wait_for(
            pilot, lambda: any("conflict" in n for n in notifications(app)), what="the conflict told"
        )
        assert fake.outbox.records()[0].state is ActionState.CONFLICT


async def test_rename_keeping_the_id_says_so_and_the_buttons_name_their_keys(make_fake_app: Any) -> None:
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await service_ready(pilot)
        await press_from_lookup(pilot, "g")
        await wait_for(
            pilot, lambda: isinstance(app.screen, GroupsScreen) and bool(app.screen.rows), what="groups"
        )
        app.screen.query_one("#groups-table", DataTable).focus()
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupNameModal), what="the rename modal")
        modal = app.screen
        labels = [str(button.label) for button in modal.query("Button")]
        assert labels == ["Cancel [esc]", "OK [enter]"]
        await pilot.press("enter")
        message = str(modal.query_one("#group-name-message", Static).content)
        assert "That is its id now" in message and "already exists" not in message
        assert app.screen is modal and not fake.outbox.records()
