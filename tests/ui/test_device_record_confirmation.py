"""Creating, registering and deleting device records from the `:` command line: a confirmation
that names the cloud and the device, nothing queued until it is answered yes; and one run on the
real simulator, judged by its mutation log."""

from __future__ import annotations

from typing import Any

from fakes.fake_service import FakeService, Ids
from test_technician_navigation import SIZE, RecordingApp, command, ready
from textual.widgets import Static
from ui_helpers import service_ready, wait_for

from fieldtui.core.actions import ActionType
from fieldtui.ui.modals.device_record import DeviceRecordModal
from fieldtui.ui.screens.device import DeviceScreen

FLEET_DEVICES = "/fleet/api/v0/projects/demo/devices"


def modal_text(app: Any) -> str:
    screen = app.screen
    assert isinstance(screen, DeviceRecordModal)
    return "\n".join(str(s.render()) for s in screen.query(Static))


async def test_delete_asks_naming_the_cloud_and_the_device_and_queues_only_on_yes() -> None:
    fake = FakeService()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, f"delete {Ids.OFFLINE} fleet")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceRecordModal), what="the confirmation")
        text = modal_text(app)
        assert f"Delete device {Ids.OFFLINE}?" in text and "fleet (fleet)" in text
        assert "removes the device and all its records" in text
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, DeviceRecordModal), what="the answer")
        assert not [r for r in await fake.outbox.list_actions() if r.action.type is ActionType.DELETE_DEVICE]

        await command(pilot, f"delete {Ids.OFFLINE} fleet")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceRecordModal), what="the confirmation")
        await pilot.press("y")

        async def queued() -> list[Any]:
            return [r for r in await fake.outbox.list_actions() if r.action.type is ActionType.DELETE_DEVICE]

        await wait_for(pilot, lambda: any(f"Delete {Ids.OFFLINE} from fleet" in n for n in app.notified))
        (record,) = await queued()
        assert (record.action.device, record.action.backend) == (Ids.OFFLINE, "fleet")


async def test_on_a_devices_screen_delete_and_setting_mean_that_device() -> None:
    fake = FakeService()
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.go_to_device(Ids.OFFLINE)
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device")
        await wait_for(pilot, lambda: app.index.get(Ids.OFFLINE) is not None, what="its clouds")
        await command(pilot, "delete")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceRecordModal), what="the confirmation")
        assert f"Delete device {Ids.OFFLINE}?" in modal_text(app) and "fleet (fleet)" in modal_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device again")
        app.go_to_device(Ids.MQTT_TWIN)
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, DeviceScreen) and app.screen.device_id == Ids.MQTT_TWIN,
            what="the MQTT device",
        )
        await wait_for(pilot, lambda: app.index.get(Ids.MQTT_TWIN) is not None, what="its clouds")
        await command(pilot, "setting interval=60")

        async def settings() -> list[Any]:
            return [
                r for r in await fake.outbox.list_actions() if r.action.type is ActionType.SET_CLOUD_SETTING
            ]

        await wait_for(
            pilot, lambda: any("Cloud setting interval" in n for n in app.notified), what="the setting"
        )
        (record,) = await settings()
        assert (record.action.device, record.action.backend) == (Ids.MQTT_TWIN, "live")
        assert record.action.params == {"property": "interval", "value": 60}


async def test_a_line_that_cannot_be_confirmed_says_what_is_missing() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await command(pilot, "register NEW-GW-1")
        await wait_for(pilot, lambda: any("uuid" in n for n in app.notified), what="the refusal")
        await command(pilot, "register NEW-GW-1 1234")
        await wait_for(pilot, lambda: any("'1234' is not a uuid" in n for n in app.notified))
        await command(pilot, "delete X1 nowhere")
        await wait_for(pilot, lambda: any("No cloud named 'nowhere'" in n for n in app.notified))
        await command(pilot, "create")
        await wait_for(pilot, lambda: any("Which device? Type :create SERIAL" in n for n in app.notified))
        assert not isinstance(app.screen, DeviceRecordModal)


async def test_create_on_the_simulator_after_confirming(make_clean_app: Any, sim_clean: Any) -> None:
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        await command(pilot, "create UI-NEW-1 owner_ref=tech-7 hardware_version=hwrev1")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceRecordModal), what="the confirmation")
        text = modal_text(app)
        assert "Create device UI-NEW-1?" in text and "fleet (fleet)" in text and "owner_ref  tech-7" in text
        assert sim_clean.admin("GET", "/_sim/mutations?backend=fleet").json() == []
        await pilot.press("y")

        def posted() -> list[Any]:
            log = sim_clean.admin("GET", "/_sim/mutations?backend=fleet").json()
            return [m for m in log if (m["method"], m["path"]) == ("POST", FLEET_DEVICES)]

        await wait_for(pilot, lambda: bool(posted()), timeout=30, what="the create on the simulator")
        assert posted()[0]["body"] == {
            "device_serial": "UI-NEW-1",
            "owner_ref": "tech-7",
            "hardware_version": "hwrev1",
        }
        await wait_for(pilot, lambda: any("Create UI-NEW-1 on fleet: synced" in n for n in app.notified))


async def test_edit_on_a_devices_screen_is_queued_for_that_device_on_the_simulator(
    make_clean_app: Any, sim_clean: Any
) -> None:
    """`:edit FIELD=VALUE` on a gateway's screen: the DeviceHQ record edited once, a quoted value
    with a space kept whole, judged by the simulator's own log."""
    gateway = next(iter(sim_clean.fleet.of("devicehq")))
    app = make_clean_app()
    async with app.run_test(size=SIZE) as pilot:
        await service_ready(pilot)
        app.go_to_device(gateway)
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the gateway")
        screen = app.screen
        assert isinstance(screen, DeviceScreen)
        await wait_for(pilot, lambda: screen.complete, timeout=30, what="its clouds")
        await command(pilot, 'edit description="pump room 2"')

        def edits() -> list[Any]:
            log = sim_clean.admin("GET", "/_sim/mutations?backend=gateways").json()
            return [m for m in log if m["method"] == "PUT" and str(gateway) in m["path"]]

        await wait_for(pilot, lambda: bool(edits()), timeout=30, what="the edit on the simulator")
        assert edits()[0]["body"]["data"]["attributes"] == {"description": "pump room 2"}
        await wait_for(
            pilot,
            lambda: any(f"Edit description of {gateway}: synced" in n for n in app.notified),
            timeout=30,
            what="synced",
        )
        assert len(edits()) == 1
