"""Errors on a device say each cloud once, in full only for the clouds that hold the device."""

from __future__ import annotations

from fakes.fake_service import FakeService, Ids
from test_footer_and_outbox import open_device
from test_technician_navigation import SIZE, RecordingApp, ready
from textual.widgets import Static
from ui_helpers import wait_for

from fieldtui.service.api import BackendState
from fieldtui.ui.text import cloud_error


def test_a_cloud_is_named_once_in_its_error() -> None:
    assert cloud_error("things", "things: cannot reach the cloud (check the VPN)") == (
        "things: cannot reach the cloud (check the VPN)"
    )
    assert cloud_error("things", "timed out") == "things: timed out"


async def test_an_unreachable_cloud_that_does_not_hold_the_device_is_one_short_line() -> None:
    fake = FakeService()
    fake.connectivity.set_state("gateways", BackendState.OFFLINE, "gateways: connection refused")
    app = RecordingApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = await open_device(pilot, Ids.THING)
        errors = screen.query_one("#device-errors", Static)
        await wait_for(pilot, lambda: screen.complete, what="every cloud answered")
        await pilot.pause(0.2)
        await wait_for(pilot, lambda: "gateways" in str(errors.content), what="the unasked cloud")
        shown = str(errors.content)
        assert shown == "Not asked (unreachable): gateways"
