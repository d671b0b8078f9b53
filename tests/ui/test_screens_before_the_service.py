"""A key pressed in the first second, before the service is up (seen in tmux: Groups opened at
once said "press F5 to retry" and stayed empty): the screen says it is connecting and loads
by itself once the service is there, with nothing to press."""

from __future__ import annotations

import asyncio

from fakes.fake_service import FakeService, Ids
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static
from ui_helpers import wait_for

from fieldtui.ui.app import FieldApp
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.groups import GroupsScreen
from fieldtui.ui.waiting import CONNECTING


def shown(screen: Screen[None], selector: str) -> str:
    try:
        return str(screen.query_one(selector, Static).content)
    except NoMatches:
        return ""  # not mounted yet


def slow_start(fake: FakeService) -> tuple[FieldApp, asyncio.Event]:
    """An app whose service comes up only when the test says so."""
    up = asyncio.Event()

    async def service() -> FakeService:
        await up.wait()
        return fake

    return FieldApp(service, profile="site-a"), up


async def test_groups_opened_before_the_service_load_once_it_is_up() -> None:
    app, up = slow_start(FakeService())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.action_groups()
        await wait_for(pilot, lambda: isinstance(app.screen, GroupsScreen), what="the groups screen")
        screen = app.screen
        assert isinstance(screen, GroupsScreen)
        await wait_for(pilot, lambda: CONNECTING in shown(screen, "#groups-summary"), what="connecting")
        up.set()
        await wait_for(pilot, lambda: bool(screen.rows), what="the groups, without F5")
        assert "Enter: members" in shown(screen, "#groups-summary")


async def test_a_device_opened_before_the_service_loads_once_it_is_up() -> None:
    app, up = slow_start(FakeService())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.go_to_device(Ids.THING)
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceScreen), what="the device screen")
        screen = app.screen
        assert isinstance(screen, DeviceScreen)
        await wait_for(pilot, lambda: CONNECTING in shown(screen, "#device-facts"), what="connecting")
        up.set()
        await wait_for(pilot, lambda: screen.view is not None and screen.complete, what="the device")
        assert CONNECTING not in shown(screen, "#device-facts")
        assert Ids.THING in shown(screen, "#device-title")
