"""Group moves and the groups screen, driven by keys against the simulator."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input, OptionList, Static
from ui_helpers import notifications, press_from_lookup, service_ready, wait_for, wait_until

from fieldtui.ui.modals.group_name import GroupNameModal
from fieldtui.ui.modals.group_picker import GroupPickerModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.groups import GroupsScreen
from fieldtui.ui.screens.lookup import LookupScreen
from fieldtui.ui.widgets.confirm import ConfirmModal


def things_ids(sim: Any, count: int) -> list[str]:
    return list(sim.fleet.of("things"))[:count]


def sim_group(sim: Any, tuid: str) -> str:
    return sim.admin("GET", f"/_sim/inspect/things/{tuid}").json()["group"]


async def open_device(pilot: Any, device_id: str) -> DeviceScreen:
    app = pilot.app
    query = app.screen.query_one("#query", Input)
    query.focus()
    query.value = device_id  # pasted: typed key by key, each prefix would be asked of the clouds
    await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, DeviceScreen) and app.screen.view is not None,
        what=f"device {device_id}",
    )
    return app.screen


async def outbox_states(app: Any) -> dict[str, int]:
    """How many of the outbox's actions are in each state (as the outbox itself lists them)."""
    states: dict[str, int] = {}
    for record in await app.service.outbox.list_actions():
        states[record.state.value] = states.get(record.state.value, 0) + 1
    return states


async def test_group_id_rules_say_why_as_each_cloud_declares_them(make_app: Any) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
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


async def test_move_two_marked_devices_from_lookup_syncs(make_clean_app: Any, sim_clean: Any) -> None:
    first, second = things_ids(sim_clean, 2)
    target = next(
        g
        for g in sim_clean.fleet.groups
        if g not in (sim_group(sim_clean, first), sim_group(sim_clean, second))
    )
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await service_ready(pilot)
        for device_id in (first, second):
            await open_device(pilot, device_id)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, LookupScreen), what="back to the lookup")
        lookup = app.screen
        assert isinstance(lookup, LookupScreen)
        # Looking the serials up asked every cloud: show the things only.
        lookup.query_one("#query", Input).value = "cloud:things"
        await pilot.pause()
        assert [row.id for row in lookup._shown] == sorted([first, second])
        lookup.query_one("#results", DataTable).focus()
        await pilot.press("space", "space", "m")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the group picker")
        picker = app.screen
        await wait_for(pilot, lambda: picker.loaded, what="the group list")
        await pilot.press(*target, "enter")
        await wait_until(pilot, lambda: _moved(sim_clean, [first, second], target), what="both moves synced")
        await wait_for(pilot, lambda: any("2 synced" in n for n in notifications(app)), what="the summary")
        counts = await outbox_states(app)
        assert counts.get("done") == 2


async def _moved(sim: Any, tuids: list[str], group: str) -> bool:
    return all(sim_group(sim, t) == group for t in tuids)


async def test_create_group_refuses_whitespace_then_creates_and_moves(
    make_clean_app: Any, sim_clean: Any
) -> None:
    (device,) = things_ids(sim_clean, 1)
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await service_ready(pilot)
        screen = await open_device(pilot, device)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the group picker")
        picker = app.screen
        await wait_for(pilot, lambda: picker.loaded, what="the group list")
        await pilot.press(*"roof top", "enter")
        message = str(picker.query_one("#group-picker-message", Static).content)
        assert "cannot contain spaces" in message and "'roof-top'" in message
        assert await outbox_states(app) == {}
        assert app.screen is picker
        await pilot.press("ctrl+u", *"unassigned")
        options = picker.query_one("#group-options", OptionList)
        offered = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert offered == ["group:unassigned"]  # picked from the list, never created
        await pilot.press("ctrl+u")
        await pilot.press(*"roof-top", "enter", "y")  # a new group is confirmed first
        await wait_until(pilot, lambda: _moved(sim_clean, [device], "roof-top"), what="the move")
        assert "roof-top" in sim_clean.admin("GET", "/_sim/inspect/things/" + device).json()["group"]
        assert screen is not None


async def test_groups_screen_lists_filters_and_shows_members(make_app: Any, sim: Any) -> None:
    app = make_app()
    group = sorted(sim.fleet.groups)[0]
    async with app.run_test(size=(100, 30)) as pilot:
        await service_ready(pilot)
        await press_from_lookup(pilot, "g")
        await wait_for(
            pilot, lambda: isinstance(app.screen, GroupsScreen) and bool(app.screen.rows), what="groups"
        )
        screen = app.screen
        things_rows = [r for r in screen.rows if r.backend == "things"]
        assert {r.id for r in things_rows} >= set(sim.fleet.groups)
        await pilot.press("slash", *group, "enter")
        assert [r.id for r in screen.shown if r.backend == "things"] == [group]
        table = screen.query_one("#groups-table", DataTable)
        table.focus()
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                screen.members_of is not None
                and "loading" not in str(screen.query_one("#members-title", Static).content)
            ),
            what="members",
        )
        expected = next(r.member_count for r in things_rows if r.id == group)
        assert len(screen.members) == expected


async def test_group_create_rename_delete_from_groups_screen(make_clean_app: Any, sim_clean: Any) -> None:
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
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
        counts = await outbox_states(app)
        assert counts.get("done") == 3


async def test_group_picker_search_narrows_the_list(make_app: Any, sim: Any) -> None:
    (device,) = things_ids(sim, 1)
    group = sorted(sim.fleet.groups)[-1]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await service_ready(pilot)
        await open_device(pilot, device)
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the picker")
        picker = app.screen
        await wait_for(pilot, lambda: picker.loaded, what="the group list")
        await pilot.press(*group)
        options = picker.query_one("#group-options", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids == [f"group:{group}"]


async def pick(pilot: Any, group: str) -> None:
    app = pilot.app
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the group picker")
    picker = app.screen
    await wait_for(pilot, lambda: picker.loaded, what="the group list")
    await pilot.press(*group, "enter")


async def test_move_while_cloud_unreachable_queues_then_syncs_when_back(
    make_clean_app: Any, sim_clean: Any
) -> None:
    (device,) = things_ids(sim_clean, 1)
    target = next(g for g in sorted(sim_clean.fleet.groups) if g != sim_group(sim_clean, device))
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await service_ready(pilot)
        await open_device(pilot, device)
        await app.service.groups("things")  # seen once online: the picker can list them from the cache
        assert sim_clean.admin("PUT", "/_sim/faults/things", json={"unreachable": True}).status_code == 200
        await pick(pilot, target)
        await wait_for(
            pilot,
            lambda: any(n.startswith(f"Move {device}") for n in notifications(app)),
            timeout=30,
            what="the first attempt",
        )
        assert "1 queued" in next(n for n in notifications(app) if n.startswith(f"Move {device}"))
        assert sim_group(sim_clean, device) != target
        assert sim_clean.admin("DELETE", "/_sim/faults").status_code == 200

        async def synced() -> bool:
            return (await outbox_states(app)).get("done") == 1

        await wait_until(pilot, synced, timeout=60, what="the sync once the cloud is back")
        assert sim_group(sim_clean, device) == target


async def test_move_of_a_device_moved_meanwhile_is_a_conflict(make_clean_app: Any, sim_clean: Any) -> None:
    (device,) = things_ids(sim_clean, 1)
    seen = sim_group(sim_clean, device)
    elsewhere, target = [g for g in sorted(sim_clean.fleet.groups) if g != seen][:2]
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await service_ready(pilot)
        await open_device(pilot, device)
        assert app.index.get(device).group == seen
        # Someone in the office moves it while the technician looks at the old group.
        sim_clean.simulator.server.clouds["things"]._move(device, elsewhere)
        await pick(pilot, target)
        await wait_for(
            pilot, lambda: any("conflict" in n for n in notifications(app)), timeout=30, what="the conflict"
        )
        assert (await outbox_states(app)).get("conflict") == 1
        assert sim_group(sim_clean, device) == elsewhere
