"""Every screen and modal at 80x24 and 120x40, against the frozen simulator (fixed seed and clock).

The simulator's fleet and clock, the UI clock, the telemetry rate clock, action ids and the
text cursor are all held still, so each SVG is the same on every run
(``pytest tests/ui/test_snapshots.py --snapshot-update`` records them after a deliberate change).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable
from ui_helpers import press_from_lookup, service_ready, wait_for

import fieldtui.core.actions as actions_module
from fieldtui.ui.modals.group_picker import GroupPickerModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.groups import GroupsScreen
from fieldtui.ui.screens.help import HelpScreen
from fieldtui.ui.screens.install import InstallScreen, SkipReasonModal
from fieldtui.ui.screens.status import StatusModal
from fieldtui.ui.screens.telemetry import TelemetryScreen
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
RunBefore = Callable[[Pilot[Any]], Awaitable[None]]


@pytest.fixture(autouse=True)
def _fixed_action_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count(1)
    monkeypatch.setattr(
        actions_module, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=f"{next(counter):032x}"))
    )


def things(frozen_sim: Any, n: int) -> list[str]:
    return sorted(frozen_sim.fleet.of("things"))[:n]


def fleet_ids(frozen_sim: Any, n: int) -> list[str]:
    return sorted(frozen_sim.fleet.of("fleet"))[:n]


async def known(pilot: Pilot[Any], ids: list[str]) -> None:
    """Look these devices up (as a technician would have), so the index holds them."""
    app = pilot.app
    for device_id in ids:
        app.absorb_find_update(await app.service.device(device_id))
    app._refresh_lookup()
    await pilot.pause()


async def settle(pilot: Pilot[Any], timeout: float = 20.0) -> None:
    """Wait until the screen stops changing: the same picture three looks in a row."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    pictures: list[str] = []
    while len(pictures) < 3 or len(set(pictures[-3:])) > 1:
        if time.monotonic() > deadline:
            raise AssertionError("the screen kept changing")
        await pilot.pause(0.3)
        pictures.append(app.export_screenshot())


async def to_device(pilot: Pilot[Any], device_id: str) -> DeviceScreen:
    app = pilot.app
    app.open_device(device_id)
    await wait_for(
        pilot, lambda: isinstance(app.screen, DeviceScreen) and app.screen.view is not None, what="the device"
    )
    await settle(pilot)
    return app.screen


def scenarios(frozen_sim: Any) -> dict[str, RunBefore]:
    thing, *others = things(frozen_sim, 6)
    fleet_devices = fleet_ids(frozen_sim, 3)

    async def lookup(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await known(pilot, [thing, *others, *fleet_devices])
        pilot.app.screen.query_one("#results", DataTable).focus()
        await pilot.press("space")

    async def device(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await to_device(pilot, thing)

    async def telemetry(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await to_device(pilot, thing)
        await pilot.press("t")
        app = pilot.app
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, TelemetryScreen) and app.screen.shown_total > 0,
            what="telemetry",
        )
        await pilot.pause(0.3)

    async def tasks(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await to_device(pilot, thing)
        await pilot.press("k")
        await pilot.pause(0.2)
        await settle(pilot)

    async def fleet_tasks(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        pilot.app.action_fleet_tasks()
        await pilot.pause(1.0)
        await settle(pilot)

    async def outbox(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        writes = pilot.app.service.writes
        await writes.move_to_group(thing, "roof-1", backend="things", precondition={"group": "x"})
        await writes.set_installation_status(
            thing, "installed", backend="things", precondition={"status": "new"}
        )
        await pilot.app.refresh_outbox_counts()
        await press_from_lookup(pilot, "o")
        await pilot.pause(0.5)
        await settle(pilot)

    async def groups(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await press_from_lookup(pilot, "g")
        app = pilot.app
        await wait_for(
            pilot, lambda: isinstance(app.screen, GroupsScreen) and bool(app.screen.rows), what="groups"
        )
        await settle(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.members_of is not None, what="members")
        await settle(pilot)

    async def group_picker(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await to_device(pilot, thing)
        await pilot.press("m")
        app = pilot.app
        await wait_for(
            pilot, lambda: isinstance(app.screen, GroupPickerModal) and app.screen.loaded, what="the picker"
        )
        await pilot.press(*"roof two", "enter")

    async def status_modal(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await to_device(pilot, thing)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, StatusModal), what="the status modal")

    async def confirm(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await to_device(pilot, thing)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, StatusModal), what="the status modal")
        await pilot.press("5", "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal), what="the confirmation")

    async def help_screen(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await press_from_lookup(pilot, "question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), what="help")
        await pilot.pause(0.3)

    async def install_scan(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await press_from_lookup(pilot, "i")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, InstallScreen), what="install")
        await pilot.press(*thing[:6])

    async def install_group(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await press_from_lookup(pilot, "i")
        app = pilot.app
        await wait_for(pilot, lambda: isinstance(app.screen, InstallScreen), what="install")
        screen = app.screen
        await pilot.press(*thing, "enter")
        # The frozen fleet's things last reported long before "now": found, not reachable. Skip it.
        await wait_for(
            pilot,
            lambda: "to report" in str(screen.query_one("#install-wait").content),
            what="the reachability wait",
        )
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SkipReasonModal), what="the reason prompt")
        await pilot.press(*"device asleep", "enter")
        await wait_for(pilot, lambda: screen.walk.current == "group", timeout=20, what="the group step")
        await settle(pilot)

    async def install_summary(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await service_ready(pilot)
        await press_from_lookup(pilot, "i")
        app = pilot.app
        await wait_for(pilot, lambda: isinstance(app.screen, InstallScreen), what="install")
        screen = app.screen
        await pilot.press(*thing, "enter")
        # Offline and never seen: nothing can be checked, the group's cloud is unknown, and the
        # installation is queued for later.
        await wait_for(pilot, lambda: screen.walk.current == "install", timeout=20, what="the install step")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.walk.current == "summary", timeout=20, what="the summary")
        await settle(pilot)

    return {
        "lookup": lookup,
        "device": device,
        "telemetry": telemetry,
        "tasks": tasks,
        "fleet_tasks": fleet_tasks,
        "outbox": outbox,
        "groups": groups,
        "group_picker": group_picker,
        "status_modal": status_modal,
        "confirm": confirm,
        "help": help_screen,
        "install_scan": install_scan,
        "install_group": install_group,
        "install_summary": install_summary,
    }


#: Scenarios that would change the frozen simulator run offline: their changes stay queued.
OFFLINE = {"outbox", "install_summary"}
NAMES = [
    "lookup",
    "device",
    "telemetry",
    "tasks",
    "fleet_tasks",
    "outbox",
    "groups",
    "group_picker",
    "status_modal",
    "confirm",
    "help",
    "install_scan",
    "install_group",
    "install_summary",
]


@pytest.mark.slow
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", NAMES)
def test_snapshot(
    name: str, size: str, snap_compare: Any, make_frozen_app: Any, frozen_sim: Any, frozen_monotonic: None
) -> None:
    app = make_frozen_app(offline=name in OFFLINE)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=scenarios(frozen_sim)[name])
