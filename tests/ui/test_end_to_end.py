"""End to end on the real simulator: the app, the real session, loopback HTTP and mosquitto.

The screens' behaviour is proven over the in-memory port (the other modules in tests/ui); these
few tests prove that the whole chain does what a technician relies on: a scanned twin shows both
clouds, a change shows "synced" without F5 (judged by the simulator's own record of writes), a
second move after a synced one syncs too, an MQTT reboot is followed to done in History, and a
change made while a cloud is unreachable syncs when it is back.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Static
from ui_helpers import notifications, open_group, service_ready, wait_for

from fieldtui.ui.modals.command import CommandModal
from fieldtui.ui.modals.group_picker import GroupPickerModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.status import StatusModal
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZE = (80, 24)


def inspect(sim: Any, kind: str, device: str) -> dict[str, Any]:
    return sim.admin("GET", f"/_sim/inspect/{kind}/{device}").json()


def mutations(sim: Any, backend: str) -> list[dict[str, Any]]:
    return sim.admin("GET", f"/_sim/mutations?backend={backend}").json()


def plain_thing(sim: Any) -> str:
    """An online things device that no other cloud knows."""
    return sorted(d.id for d in sim.fleet.of("things").values() if d.online and not d.also_in)[0]


async def scan(pilot: Any, serial: str) -> DeviceScreen:
    """The serial typed into the lookup box and Enter, as a scanner does; the device opens."""
    app = pilot.app
    await service_ready(pilot)
    await pilot.press(*serial, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what=f"device {serial}")
    screen = app.screen
    assert isinstance(screen, DeviceScreen)
    return screen


def facts(screen: DeviceScreen) -> str:
    return str(screen.query_one("#device-facts", Static).content)


def moves_synced(app: Any, device: str) -> int:
    return sum(n.startswith(f"Move {device}") and "1 synced" in n for n in notifications(app))


async def choose_status(pilot: Any, status: str) -> None:
    app = pilot.app
    await pilot.press("s")
    # Pushed is not yet composed: wait for its list too.
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, StatusModal) and bool(app.screen.query("#status-options")),
        what="the status modal",
    )
    modal = app.screen
    await pilot.press(*[c for c in _status_key(modal, status)], "enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, StatusModal), what="the modal to close")
    if isinstance(app.screen, ConfirmModal):
        await pilot.press("y")


def _status_key(modal: StatusModal, status: str) -> str:
    from textual.widgets import OptionList

    options = modal.query_one("#status-options", OptionList)
    for index in range(options.option_count):
        if options.get_option_at_index(index).id == status:
            return str(index + 1)
    raise AssertionError(f"{status} is not offered")


async def move(pilot: Any, group: str) -> None:
    app = pilot.app
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, GroupPickerModal), what="the group picker")
    picker = app.screen
    await wait_for(pilot, lambda: picker.loaded, what="the group list")
    await pilot.press(*group, "enter")
    await wait_for(pilot, lambda: not isinstance(app.screen, GroupPickerModal), what="the picker to close")
    if isinstance(app.screen, ConfirmModal):
        await pilot.press("y")


async def test_scanned_twin_shows_both_clouds_and_its_id_at_80x24(make_app: Any, sim: Any) -> None:
    twin = sorted(d.id for d in sim.fleet.of("mqtt").values() if d.online and d.also_in)[0]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await scan(pilot, twin)
        await wait_for(
            pilot,
            lambda: screen.view is not None and {"live", "fleet"} <= {s.backend for s in screen.view.sources},
            what="both clouds",
        )
        await wait_for(pilot, lambda: "live" in facts(screen) and "fleet" in facts(screen), what="both drawn")
        title = str(screen.query_one("#device-title", Static).content)
        assert twin in title
        # The id's line is at the top of the 80x24 screen (right under the status bar and its
        # breadcrumbs), never scrolled off.
        assert (
            screen.query_one("#device-title", Static).region.y
            == screen.query_one("#status-bar").region.bottom
        )


async def test_status_change_shows_synced_without_reload(make_clean_app: Any, sim_clean: Any) -> None:
    device = plain_thing(sim_clean)
    before = inspect(sim_clean, "things", device)["installation_status"]
    status = "uninstalled" if before != "uninstalled" else "installed"
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await scan(pilot, device)
        await wait_for(pilot, lambda: screen.view is not None and not screen.view.stale, what="the device")
        await choose_status(pilot, status)
        await wait_for(
            pilot,
            lambda: any(n.startswith(device) and n.endswith(": synced") for n in notifications(app)),
            timeout=30,
            what="synced",
        )
        # The cloud took it once (its own record), and the screen shows it without F5.
        posted = [m for m in mutations(sim_clean, "things") if device in m["path"]]
        assert len(posted) == 1, posted
        assert inspect(sim_clean, "things", device)["installation_status"] == status
        assert screen.view is not None and screen.view.device.installation_status is not None
        await wait_for(
            pilot,
            lambda: screen.view is not None and screen.view.device.installation_status.value == status,
            what="the new status on screen",
        )
        assert status in facts(screen)


async def test_move_after_a_synced_move_syncs_too(make_clean_app: Any, sim_clean: Any) -> None:
    device = plain_thing(sim_clean)
    seen = inspect(sim_clean, "things", device)["group"]
    first, second = [g for g in sorted(sim_clean.fleet.groups) if g != seen][:2]
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await scan(pilot, device)
        await wait_for(pilot, lambda: screen.view is not None and not screen.view.stale, what="the device")
        for number, group in enumerate((first, second), start=1):
            await move(pilot, group)
            await wait_for(
                pilot,
                lambda count=number: moves_synced(app, device) >= count,
                timeout=30,
                what=f"move {number} synced",
            )
            assert inspect(sim_clean, "things", device)["group"] == group
        assert not any("conflict" in n for n in notifications(app)), notifications(app)
        await wait_for(pilot, lambda: second in facts(screen), what="the second group on screen")


async def test_reboot_of_an_mqtt_device_is_followed_to_done_in_history(
    make_clean_app: Any, sim_clean: Any
) -> None:
    device = sorted(d.id for d in sim_clean.fleet.of("mqtt").values() if d.online)[0]
    app = make_clean_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await scan(pilot, device)
        await wait_for(
            pilot, lambda: screen.view is not None and "live" in {s.backend for s in screen.view.sources}
        )
        await pilot.press("x")
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, CommandModal) and bool(app.screen.query("#command-name")),
            what="the command modal",
        )
        modal = app.screen
        modal.query_one("#command-name").value = "reboot"
        await pilot.press("enter")
        modal.query_one("#command-params").value = "delay=0"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen, what="back on the device")
        await pilot.press("h")
        history = screen.query_one("#device-history", Static)

        def reboot_line() -> str:
            lines = [line for line in str(history.content).splitlines() if "reboot" in line]
            return lines[0] if lines else ""

        # Generous: under faketime the whole round trip (outbox, broker, device, History) took
        # 26 s of the 30 s this once allowed, against 3 s without it.
        await wait_for(pilot, lambda: "done" in reboot_line(), timeout=90, what="the reboot done in History")
        assert "live" in reboot_line()


async def test_change_made_while_the_cloud_is_unreachable_syncs_when_it_is_back(
    make_clean_app: Any, sim_clean: Any
) -> None:
    device = plain_thing(sim_clean)
    before = inspect(sim_clean, "things", device)["installation_status"]
    status = "quarantine" if before != "quarantine" else "installed"
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await scan(pilot, device)
        await wait_for(pilot, lambda: screen.view is not None and not screen.view.stale, what="the device")
        assert sim_clean.admin("PUT", "/_sim/faults/things", json={"unreachable": True}).status_code == 200
        await choose_status(pilot, status)
        await wait_for(pilot, lambda: "queued" in facts(screen), what="queued on the device screen")
        assert inspect(sim_clean, "things", device)["installation_status"] == before
        assert sim_clean.admin("DELETE", "/_sim/faults").status_code == 200
        await wait_for(
            pilot,
            lambda: any(n.startswith(device) and n.endswith(": synced") for n in notifications(app)),
            timeout=60,
            what="synced once the cloud is back",
        )
        assert inspect(sim_clean, "things", device)["installation_status"] == status


async def test_marked_group_members_move_then_get_a_status_each_once(
    make_clean_app: Any, sim_clean: Any
) -> None:
    """Three members of a things group (a gateway DeviceHQ also holds among them) marked in the
    groups screen, moved to another group, then given a status: the things cloud records one
    change per device and action, DeviceHQ none, and the rows say synced without F5."""
    from ui_helpers import press_from_lookup

    from fieldtui.ui.screens.groups import GroupsScreen

    things = sim_clean.fleet.of("things").values()
    by_group: dict[str, list[Any]] = {}
    for device in things:
        by_group.setdefault(device.group, []).append(device)
    # The largest group that holds a twin: one twin and two devices only things knows.
    source = max(
        (g for g in by_group if g != "unassigned"),
        key=lambda g: (any(d.also_in for d in by_group[g]), len(by_group[g]), g),
    )
    members = sorted(by_group[source], key=lambda d: d.id)
    twin = next(d.id for d in members if d.also_in)
    chosen = sorted([twin, *[d.id for d in members if not d.also_in][:2]])
    assert len(chosen) == 3
    target = next(g for g in sorted(sim_clean.fleet.groups) if g != source)
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        await press_from_lookup(pilot, "g")
        await wait_for(
            pilot, lambda: isinstance(app.screen, GroupsScreen) and bool(app.screen.rows), what="groups"
        )
        screen = app.screen
        assert isinstance(screen, GroupsScreen)
        await open_group(pilot, source)
        await wait_for(
            pilot,
            lambda: screen.members_of is not None and screen.members_of.id == source and bool(screen.members),
            timeout=30,
            what="the members",
        )
        await wait_for(pilot, lambda: screen.members_table.has_focus, what="the members focused")

        async def mark(ids: list[str]) -> None:
            order = [line.id for line in screen.members_table.objects]
            for device in ids:
                screen.members_table.move_cursor(row=order.index(device))
                await pilot.press("space")
            assert screen.marked == set(ids)

        await mark(chosen)
        await move(pilot, target)
        await wait_for(
            pilot,
            lambda: any(n.startswith(f"Move 3 devices to {target}: 3 synced") for n in notifications(app)),
            timeout=30,
            what="the move's summary",
        )
        moved = [m for m in mutations(sim_clean, "things") if any(d in m["path"] for d in chosen)]
        assert len(moved) == 3, moved
        assert {inspect(sim_clean, "things", d)["group"] for d in chosen} == {target}
        assert not [m for m in mutations(sim_clean, "devicehq") if any(d in m["path"] for d in chosen)]
        await wait_for(
            pilot,
            lambda: (
                {line.id: line.change.words if line.change else "" for line in screen.members_table.objects}
                == {
                    **{line.id: "" for line in screen.members_table.objects},
                    **dict.fromkeys(chosen, f"synced→{target}"),
                }
            ),
            timeout=30,
            what="the rows synced",
        )

        # The same three, from the group they are in now, get an installation status.
        before = {d: inspect(sim_clean, "things", d)["installation_status"] for d in chosen}
        status = "quarantine"
        await pilot.press("escape")
        await open_group(pilot, target, clear=True)
        await wait_for(
            pilot,
            lambda: (
                screen.members_of is not None
                and screen.members_of.id == target
                and set(chosen) <= {m.id for m in screen.members}
            ),
            timeout=30,
            what="the target group's members",
        )
        screen.members_table.focus()
        await mark(chosen)
        await choose_status(pilot, status)
        await wait_for(
            pilot,
            lambda: any(n.startswith(f"Status 3 devices → {status}") for n in notifications(app)),
            timeout=30,
            what="the status summary",
        )
        changed = [d for d in chosen if before[d] != status]
        await wait_for(
            pilot,
            lambda: all(
                line.change is not None and line.change.words == f"synced→{status}"
                for line in screen.members_table.objects
                if line.id in changed
            ),
            timeout=30,
            what="the rows synced",
        )
        posted = [m for m in mutations(sim_clean, "things") if any(d in m["path"] for d in chosen)]
        assert len(posted) == 3 + len(changed), posted
        assert {inspect(sim_clean, "things", d)["installation_status"] for d in chosen} == {status}
        assert not [m for m in mutations(sim_clean, "devicehq") if any(d in m["path"] for d in chosen)]
        assert not any("conflict" in n or "failed" in n for n in notifications(app)), notifications(app)


async def test_a_devicehq_group_emptied_by_a_move_keeps_its_rows_saying_synced(
    make_clean_app: Any, sim_clean: Any
) -> None:
    """DeviceHQ's groups exist while a device names them: every member of the smallest one
    moved to another group goes to DeviceHQ once each, and the emptied group's rows stay,
    saying where they went (no installation status is offered: DeviceHQ keeps none)."""
    from ui_helpers import press_from_lookup

    from fieldtui.ui.screens.groups import GroupsScreen

    by_group: dict[str, list[str]] = {}
    for device in sim_clean.fleet.of("devicehq").values():
        by_group.setdefault(device.group, []).append(device.id)
    source = min(sorted(by_group), key=lambda g: len(by_group[g]))
    target = next(g for g in sorted(by_group) if g != source)
    members = sorted(by_group[source])
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        await press_from_lookup(pilot, "g")
        await wait_for(
            pilot, lambda: isinstance(app.screen, GroupsScreen) and bool(app.screen.rows), what="groups"
        )
        screen = app.screen
        assert isinstance(screen, GroupsScreen)
        await open_group(pilot, source)
        await wait_for(
            pilot,
            lambda: screen.members_of is not None and sorted(m.id for m in screen.members) == members,
            timeout=30,
            what="the members",
        )
        await wait_for(pilot, lambda: screen.members_table.has_focus, what="the members focused")
        assert not screen.check_action("set_status", ())
        await pilot.press("a")
        await move(pilot, target)
        await wait_for(
            pilot,
            lambda: any(
                n.startswith(f"Move {len(members)} devices to {target}: {len(members)} synced")
                for n in notifications(app)
            ),
            timeout=30,
            what="the move's summary",
        )
        await wait_for(
            pilot,
            lambda: not screen.members and sorted(screen.left) == members,
            timeout=30,
            what="the emptied group re-read",
        )
        assert all(line.change is not None for line in screen.members_table.objects)
        assert {line.change.words for line in screen.members_table.objects if line.change} == {
            f"synced→{target}"
        }
        puts = [
            m for m in mutations(sim_clean, "devicehq") if m["method"] != "POST" or "session" not in m["path"]
        ]
        assert sorted(m["path"].rsplit("/", 1)[-1] for m in puts) == members, puts
        assert {inspect(sim_clean, "devicehq", d)["group"] for d in members} == {target}
