"""The device screen's Diagnostics tab at 80x24: a gateway's network, LoRa, log and config
uploads (download links whole and copyable) and apps; an MQTT device's config, licences and
the config the device gives when asked; a sensor's task queue; a long line opened whole."""

from __future__ import annotations

from fakes.fake_details import LONG_INFO
from fakes.fake_service import FakeService, Ids
from test_footer_and_outbox import open_device
from test_technician_navigation import SIZE, RecordingApp, ready
from textual.widgets import Static, TabbedContent
from ui_helpers import notifications, wait_for

from fieldtui.ui.modals.message_view import MessageViewModal
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.device_diagnostics import DiagnosticsPane


def _texts(pane: DiagnosticsPane) -> list[str]:
    return [line.text for line in pane.table.objects]


async def _diagnostics(pilot, device: str) -> tuple[DeviceScreen, DiagnosticsPane]:  # type: ignore[no-untyped-def]
    await ready(pilot)
    screen = await open_device(pilot, device)
    await pilot.press("d")
    pane = screen.query_one(DiagnosticsPane)
    await wait_for(pilot, lambda: pane.view is not None and pane.table.objects, what="the diagnostics")
    assert screen.query_one("#device-tabs", TabbedContent).active == "diagnostics"
    return screen, pane


async def _opened(pilot) -> str:  # type: ignore[no-untyped-def]
    """The text of the line opened whole, once the modal is composed (not only pushed)."""
    app = pilot.app
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, MessageViewModal) and bool(app.screen.query("#message-view-text")),
        what="the line opened whole",
    )
    return str(app.screen.query_one("#message-view-text", Static).content)


async def test_a_gateways_diagnostics_show_its_uploads_links_and_apps_and_a_long_line_opens_whole() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        screen, pane = await _diagnostics(pilot, Ids.GATEWAY)
        texts = _texts(pane)
        for section in ("Network", "Lora", "Log", "Config", "Apps"):
            assert section in texts
        link = "download: https://devicehq.com/api/v2/files/57e50e1d11c3a8fd12711fff"
        assert link in texts
        assert "rx_bytes: 21.0 MB (20997455)" in texts
        assert "things: the things API keeps no more about a device" in texts
        assert "Enter: a line whole" in str(screen.query_one("#diagnostics-status", Static).content)

        # The download link: copied as a value, and whole on its own line when opened.
        pane.table.focus()
        pane.table.move_cursor(row=texts.index(link))
        await wait_for(pilot, lambda: app.focused is pane.table, what="the table focused")
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: any(
                "Copied: https://devicehq.com/api/v2/files/57e50e1d" in n for n in notifications(app)
            ),
            what="the link copied",
        )
        await pilot.press("enter")
        opened = await _opened(pilot)
        assert "https://devicehq.com/api/v2/files/57e50e1d11c3a8fd12711fff" in opened.splitlines()
        assert f"fieldtui diagnostics {Ids.GATEWAY} --download log" in opened.splitlines()
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back on the device")

        # An app's report longer than the screen: cut in the table, whole in the modal.
        row = next(i for i, t in enumerate(_texts(pane)) if t.startswith("- id=60d0a5eb"))
        pane.table.move_cursor(row=row)
        await wait_for(pilot, lambda: app.focused is pane.table, what="the table focused again")
        await pilot.press("enter")
        opened = await _opened(pilot)
        assert LONG_INFO.strip() in opened


async def test_an_mqtt_device_shows_its_licences_and_the_config_it_gives_when_asked() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        _, pane = await _diagnostics(pilot, Ids.MQTT_TWIN)
        texts = _texts(pane)
        assert {"fleet", "live", "Attributes", "Licenses", "Space info", "Config"} <= set(texts)
        assert "site: harbour-06" in texts
        assert "Device config" not in texts
        pane.table.focus()
        await wait_for(pilot, lambda: pilot.app.focused is pane.table, what="the table focused")
        await pilot.press("a")
        await wait_for(pilot, lambda: "Device config" in _texts(pane), what="the device's own config")
        assert "fan_mode: auto" in _texts(pane)


async def test_a_sensors_task_queue_and_configuration_and_what_offline_means() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        _, pane = await _diagnostics(pilot, Ids.SENSOR)
        texts = _texts(pane)
        assert {"Task queue", "state: Queued", "next_task: 42", "task_count: 5", "Configuration"} <= set(
            texts
        )
        pane.table.focus()
        await pilot.press("a")
        await wait_for(
            pilot,
            lambda: any("None of this device's clouds can ask" in n for n in notifications(app)),
            what="a sensor cannot be asked",
        )

    offline = RecordingApp(FakeService(offline=True))
    async with offline.run_test(size=SIZE) as pilot:
        screen, pane = await _diagnostics(pilot, Ids.SENSOR)
        assert "sensors: reading a cloud's details needs the network" in _texts(pane)
        assert "No cloud of this device" in str(screen.query_one("#diagnostics-status", Static).content)
