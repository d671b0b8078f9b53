"""A barcode scanner on any screen: a fast burst of characters ending in Enter opens that device;
a person's keys still do what they always did; a scan at launch is kept."""

from __future__ import annotations

import asyncio
from typing import Any

from fakes.fake_service import FakeService, Ids
from test_technician_navigation import SIZE, RecordingApp, ready
from textual import events
from textual.keys import _character_to_key
from ui_helpers import wait_for

from fieldtui.ui.app import FieldApp
from fieldtui.ui.scan import ScanDetector, Verdict
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.lookup import LookupScreen
from fieldtui.ui.screens.outbox import OutboxScreen


def scan(app: FieldApp, serial: str) -> None:
    """What a wedge scanner does: every character at once, then Enter."""
    for character in serial:
        app.post_message(events.Key(_character_to_key(character), character))
    app.post_message(events.Key("enter", "\r"))


async def test_a_scan_on_the_outbox_opens_the_device_and_escape_returns_to_lookup() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.action_outbox()
        await wait_for(pilot, lambda: isinstance(app.screen, OutboxScreen), what="the outbox")
        scan(app, Ids.THING)
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the scanned device")
        screen = app.screen
        assert isinstance(screen, DeviceScreen) and screen.device_id == Ids.THING
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, LookupScreen), what="the lookup")


async def test_a_lowercase_scan_on_a_device_does_not_fire_its_keys() -> None:
    """``aq-3f2a91`` holds q (quit) and a, f, 3: none of them acts; the device opens."""
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.go_to_device(Ids.OFFLINE)
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the first device")
        scan(app, Ids.MQTT_TWIN)
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, DeviceScreen) and app.screen.device_id == Ids.MQTT_TWIN,
            what="the scanned device",
        )
        assert not app._exit
        assert len(app.screen_stack) == 2
        await pilot.pause(0.5)  # its first load ends before the app is torn down


async def test_a_technician_pressing_keys_is_not_taken_for_a_scanner() -> None:
    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.go_to_device(Ids.THING)
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device")
        await pilot.press("t")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TelemetryScreen", what="telemetry")


async def test_a_scan_before_the_clouds_are_up_is_kept() -> None:
    fake = FakeService(cached=False)

    async def slow_start() -> FakeService:
        await asyncio.sleep(1.0)
        return fake

    app = RecordingApp(fake)
    app._service_factory = slow_start
    async with app.run_test(size=SIZE) as pilot:
        scan(app, Ids.SENSOR)
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, DeviceScreen) and app.screen.is_mounted,
            what="the scanned device",
        )
        screen = app.screen
        assert isinstance(screen, DeviceScreen) and screen.device_id == Ids.SENSOR
        await pilot.pause(0.5)  # let its first load finish before the app is torn down


def test_a_slow_burst_is_let_through_in_order() -> None:
    detector: ScanDetector[str] = ScanDetector()
    verdicts = [detector.feed(c, c, c, 0.001 * i) for i, c in enumerate("abcd")]
    assert verdicts == [Verdict.PASS, Verdict.HOLD, Verdict.HOLD, Verdict.HOLD]
    assert detector.due(1.0)
    assert detector.release() == ["b", "c", "d"]
    # Enter long after the burst is an ordinary Enter.
    assert detector.feed("enter", "enter", "\r", 2.0) is Verdict.PASS


def test_a_fast_burst_ending_in_enter_is_a_scan() -> None:
    detector: ScanDetector[Any] = ScanDetector()
    for i, c in enumerate("19023480"):
        detector.feed(c, c, c, 0.002 * i)
    assert detector.feed("enter", "enter", "\r", 0.02) is Verdict.SCAN
    assert detector.scanned == "19023480"
    assert detector.release() == []


async def test_a_key_pressed_before_the_lookup_was_up_is_not_lost() -> None:
    """Ctrl+G pressed at launch (before the lookup box could take keys) still opens Groups,
    after the characters typed before it went into the box."""
    from fieldtui.ui.screens.groups import GroupsScreen

    app = RecordingApp(FakeService())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        lookup = app.screen
        assert isinstance(lookup, LookupScreen)
        app._early_keys = [events.Key("a", "a"), events.Key("ctrl+g", None)]
        lookup._take_early_keys()
        await wait_for(pilot, lambda: isinstance(app.screen, GroupsScreen), what="the groups screen")
        assert lookup.query_one("#query").value == "a"
