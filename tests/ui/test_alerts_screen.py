"""The alerting screen, opened from the command palette, over the in-memory port."""

from __future__ import annotations

from typing import Any

from fakes.fake_service import FakeService, Ids
from ui_helpers import service_ready, wait_for

from fieldtui.ui.screens.alerts import AlertsScreen
from fieldtui.ui.screens.device import DeviceScreen


async def test_alerts_from_the_palette_list_the_alerting_device_and_open_it(make_fake_app: Any) -> None:
    app = make_fake_app(FakeService())
    async with app.run_test(size=(100, 30)) as pilot:
        await service_ready(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Alerts")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen), what="the alerts screen")
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        await wait_for(pilot, lambda: screen.view is not None, what="the alerts read")
        selected = screen.table.selected()
        assert selected is not None and selected.device == Ids.ALERTING
        assert "water detected" in selected.alerts
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen), what="back to the alerts")
