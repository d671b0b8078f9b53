"""Every screen and modal at 80x24 and 120x40, over the in-memory port (``FakeService``).

The fake's fleet and clock, the UI clock, the telemetry rate clock, its action ids and the text
cursor all stand still, and the fake runs no threads, so each SVG is the same on every run and
every date (``pytest tests/ui/test_snapshots.py --snapshot-update`` records them after a
deliberate change). What each picture must show a technician is also asserted in words
(``test_*_shows_*`` below), so a reviewer of a changed SVG knows what to look for.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fakes.fake_service import FakeService, Ids
from textual.pilot import Pilot
from textual.widgets import DataTable
from ui_helpers import open_group, press_from_lookup, service_ready, wait_for

from fieldtui.ui.modals.group_picker import GroupPickerModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.device_diagnostics import DiagnosticsPane
from fieldtui.ui.screens.device_tasks import DeviceTasksScreen
from fieldtui.ui.screens.groups import GroupsScreen
from fieldtui.ui.screens.help import HelpScreen
from fieldtui.ui.screens.install import InstallScreen, SkipReasonModal
from fieldtui.ui.screens.status import StatusModal
from fieldtui.ui.screens.telemetry import TelemetryScreen
from fieldtui.ui.widgets.confirm import ConfirmModal

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}
Scenario = Callable[[Pilot[Any], FakeService], Awaitable[None]]


async def settle(pilot: Pilot[Any], timeout: float = 20.0) -> None:
    """Wait until the screen stops changing: the same picture three looks in a row."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    pictures: list[str] = []
    while len(pictures) < 3 or len(set(pictures[-3:])) > 1:
        if time.monotonic() > deadline:
            raise AssertionError("the screen kept changing")
        await pilot.pause(0.1)
        pictures.append(app.export_screenshot())


async def to_device(pilot: Pilot[Any], device_id: str) -> DeviceScreen:
    await service_ready(pilot)
    app = pilot.app
    app.open_device(device_id)
    await wait_for(
        pilot,
        lambda: (
            isinstance(app.screen, DeviceScreen) and app.screen.view is not None and not app.screen.view.stale
        ),
        what="the device, fresh from its clouds",
    )
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, DeviceScreen)
    return screen


async def lookup(pilot: Pilot[Any], fake: FakeService) -> None:
    await service_ready(pilot)
    await wait_for(
        pilot, lambda: pilot.app.screen.query_one("#results", DataTable).row_count > 0, what="rows"
    )
    pilot.app.screen.query_one("#results", DataTable).focus()
    await pilot.press("space")
    await settle(pilot)


async def device(pilot: Pilot[Any], fake: FakeService) -> None:
    await to_device(pilot, Ids.GATEWAY)


async def device_mqtt(pilot: Pilot[Any], fake: FakeService) -> None:
    await to_device(pilot, Ids.MQTT_TWIN)
    fake.sample(Ids.MQTT_TWIN, "live", co2=612, temperature=21.4, humidity=38.0)
    await settle(pilot)


async def device_diagnostics(pilot: Pilot[Any], fake: FakeService) -> None:
    screen = await to_device(pilot, Ids.GATEWAY)
    await pilot.press("d")
    pane = screen.query_one(DiagnosticsPane)
    await wait_for(pilot, lambda: bool(pane.table.objects), what="the diagnostics")
    await settle(pilot)


async def telemetry(pilot: Pilot[Any], fake: FakeService) -> None:
    await to_device(pilot, Ids.MQTT_TWIN)
    await pilot.press("t")
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, TelemetryScreen), what="the telemetry screen")
    for co2, temperature in ((598, 21.2), (605, 21.3), (612, 21.4)):
        fake.sample(Ids.MQTT_TWIN, "live", co2=co2, temperature=temperature, humidity=38.0)
    await wait_for(pilot, lambda: app.screen.shown_total >= 3, what="three samples shown")
    await settle(pilot)


async def tasks(pilot: Pilot[Any], fake: FakeService) -> None:
    await to_device(pilot, Ids.GATEWAY)
    await pilot.press("k")
    app = pilot.app
    await wait_for(
        pilot, lambda: isinstance(app.screen, DeviceTasksScreen) and app.screen.loaded, what="the tasks"
    )
    await settle(pilot)


async def fleet_tasks(pilot: Pilot[Any], fake: FakeService) -> None:
    await service_ready(pilot)
    pilot.app.action_fleet_tasks()
    await pilot.pause(0.2)
    await settle(pilot)


async def outbox(pilot: Pilot[Any], fake: FakeService) -> None:
    await service_ready(pilot)
    writes = fake.writes
    await writes.move_to_group(Ids.THING, "roof-1", backend="things", precondition={"group": "plant-roof"})
    await writes.set_installation_status(
        Ids.THING, "uninstalled", backend="things", precondition={"status": "installed"}
    )
    record = await writes.set_installation_status(Ids.ALERTING, "retired", backend="things")
    fake.fail(record.id, "installationStatus 'retired' needs a reason")
    await pilot.app.refresh_outbox_counts()
    await press_from_lookup(pilot, "o")
    await pilot.pause(0.2)
    await settle(pilot)


async def groups(pilot: Pilot[Any], fake: FakeService) -> None:
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


async def group_members(pilot: Pilot[Any], fake: FakeService) -> None:
    """Three things devices in one group: one marked, one with a status queued, one whose move
    the cloud refused (its reason under the list)."""
    for device in (Ids.THING, Ids.ALERTING, Ids.GATEWAY):
        copy = fake.cloud.copies[device]["things"]
        fake.cloud.copies[device]["things"] = copy.model_copy(update={"group": "plant-roof"})
    writes = fake.writes
    await writes.set_installation_status(
        Ids.THING, "uninstalled", backend="things", precondition={"installation_status": "installed"}
    )
    moved = await writes.move_to_group(
        Ids.GATEWAY, "tower-lobby", backend="things", precondition={"group": "plant-roof"}
    )
    fake.fail(moved.id, "group tower-lobby is locked by the site admin")
    await service_ready(pilot)
    await press_from_lookup(pilot, "g")
    app = pilot.app
    await wait_for(
        pilot, lambda: isinstance(app.screen, GroupsScreen) and bool(app.screen.rows), what="groups"
    )
    await open_group(pilot, "plant-roof")
    screen = app.screen
    assert isinstance(screen, GroupsScreen)
    await wait_for(pilot, lambda: len(screen.members) == 3 and bool(screen.changes), what="members")
    await pilot.press("space", "down")
    await settle(pilot)


async def group_picker(pilot: Pilot[Any], fake: FakeService) -> None:
    await to_device(pilot, Ids.THING)
    await pilot.press("m")
    app = pilot.app
    await wait_for(
        pilot, lambda: isinstance(app.screen, GroupPickerModal) and app.screen.loaded, what="the picker"
    )
    await pilot.press(*"roof two", "enter")
    await settle(pilot)


async def status_modal(pilot: Pilot[Any], fake: FakeService) -> None:
    await to_device(pilot, Ids.THING)
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, StatusModal), what="the status modal")
    await settle(pilot)


async def confirm(pilot: Pilot[Any], fake: FakeService) -> None:
    await to_device(pilot, Ids.THING)
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, StatusModal), what="the status modal")
    await pilot.press("5", "enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal), what="the confirmation")
    await settle(pilot)


async def help_screen(pilot: Pilot[Any], fake: FakeService) -> None:
    await service_ready(pilot)
    await press_from_lookup(pilot, "question_mark")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), what="help")
    await settle(pilot)


async def install_scan(pilot: Pilot[Any], fake: FakeService) -> None:
    await service_ready(pilot)
    await press_from_lookup(pilot, "i")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, InstallScreen), what="install")
    await pilot.press(*Ids.THING[:6])
    await settle(pilot)


async def install_group(pilot: Pilot[Any], fake: FakeService) -> None:
    """Found and reporting (a sample arrives), so the walk stands at the group step."""
    await service_ready(pilot)
    await press_from_lookup(pilot, "i")
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, InstallScreen), what="install")
    screen = app.screen
    fake.sample(Ids.THING, "things", temperature=4.5, humidity=81.0)
    await pilot.press(*Ids.THING, "enter")
    await wait_for(pilot, lambda: screen.walk.current == "group", what="the group step")
    await settle(pilot)


async def install_skip(pilot: Pilot[Any], fake: FakeService) -> None:
    """A device that does not report: skipped with a reason; its first message then passes the
    telemetry check and the walk stands at the group step."""
    silent = fake.cloud.copies[Ids.THING]["things"].model_copy(update={"online": False})
    fake.set_device(silent)
    await service_ready(pilot)
    await press_from_lookup(pilot, "i")
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, InstallScreen), what="install")
    screen = app.screen
    await pilot.press(*Ids.THING, "enter")
    await wait_for(
        pilot, lambda: "to report" in str(screen.query_one("#install-wait").content), what="the wait"
    )
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(app.screen, SkipReasonModal), what="the reason prompt")
    await pilot.press(*"device asleep", "enter")
    await wait_for(pilot, lambda: screen.walk.current == "telemetry", what="the telemetry step")
    fake.sample(Ids.THING, "things", temperature=4.5, humidity=81.0)
    await wait_for(pilot, lambda: screen.walk.current == "group", what="the group step")
    await settle(pilot)


async def install_summary(pilot: Pilot[Any], fake: FakeService) -> None:
    """Offline (--offline) and never seen: nothing can be checked, the group's cloud is unknown,
    and the installation is queued for later."""
    await service_ready(pilot)
    await press_from_lookup(pilot, "i")
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, InstallScreen), what="install")
    screen = app.screen
    await pilot.press(*Ids.THING, "enter")
    await wait_for(pilot, lambda: screen.walk.current == "install", what="the install step")
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.walk.current == "summary", what="the summary")
    await settle(pilot)


SCENARIOS: dict[str, Scenario] = {
    "lookup": lookup,
    "device": device,
    "device_mqtt": device_mqtt,
    "device_diagnostics": device_diagnostics,
    "telemetry": telemetry,
    "tasks": tasks,
    "fleet_tasks": fleet_tasks,
    "outbox": outbox,
    "groups": groups,
    "group_members": group_members,
    "group_picker": group_picker,
    "status_modal": status_modal,
    "confirm": confirm,
    "help": help_screen,
    "install_scan": install_scan,
    "install_group": install_group,
    "install_skip": install_skip,
    "install_summary": install_summary,
}
#: Scenarios run with --offline: their changes stay queued.
OFFLINE = {"install_summary"}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_snapshot(
    name: str, size: str, snap_compare: Any, make_fake_app: Any, frozen_monotonic: None
) -> None:
    fake = FakeService(offline=name in OFFLINE, cached=name not in OFFLINE)
    app = make_fake_app(fake, offline=name in OFFLINE)

    async def run_before(pilot: Pilot[Any]) -> None:
        await SCENARIOS[name](pilot, fake)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
