"""A device screen left while its clouds are still answering (Ctrl+O, then a scan of another
device) must not draw on widgets that are gone: no traceback, and the next device opens whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fakes.fake_service import FakeService, Ids
from textual.widgets import Static
from ui_helpers import service_ready, wait_for

from fieldtui.service.api import DeviceView
from fieldtui.ui.app import FieldApp
from fieldtui.ui.screens.device import DeviceScreen
from fieldtui.ui.screens.outbox import OutboxScreen


class SlowGatewayService(FakeService):
    """The gateway's first cloud answers at once; the others wait until the test lets them."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.first_shown = asyncio.Event()

    async def device_updates(
        self, device_id: str, *, start: DeviceView | None = None
    ) -> AsyncIterator[DeviceView]:
        first = True
        async for view in super().device_updates(device_id, start=start):
            yield view
            if device_id == Ids.GATEWAY and first:
                first = False
                self.first_shown.set()
                await self.release.wait()


async def test_a_device_left_while_loading_draws_nothing_and_the_next_opens() -> None:
    fake = SlowGatewayService()

    async def service() -> FakeService:
        return fake

    app = FieldApp(service, profile="site-a")
    async with app.run_test(size=(80, 24)) as pilot:
        await service_ready(pilot)
        app.go_to_device(Ids.GATEWAY)
        await wait_for(pilot, lambda: fake.first_shown.is_set(), what="the gateway's first cloud")
        left = app.screen
        assert isinstance(left, DeviceScreen)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, OutboxScreen), what="the outbox")
        app.go_to_device(Ids.THING)
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, DeviceScreen) and app.screen.device_id == Ids.THING,
            what="the scanned device",
        )
        fake.release.set()  # the gateway's other clouds answer now, to a screen that is gone
        for _ in range(5):
            await pilot.pause(0.05)
        left._render_view()  # an answer or an outbox event reaching the screen that was left
        screen = app.screen
        assert isinstance(screen, DeviceScreen)
        await wait_for(pilot, lambda: screen.complete, what="the scanned device complete")
        for _ in range(5):
            await pilot.pause(0.05)
        title = str(screen.query_one("#device-title", Static).content)
        assert Ids.THING in title
        assert app.return_code in (None, 0)


async def test_an_answer_that_arrives_before_the_screen_is_up_is_drawn_once_it_is(make_fake_app: Any) -> None:
    """Seen under load: the first cloud answered before the device screen's tabs had mounted
    their widgets; drawing it ended the app with a traceback (NoMatches '#device-facts')."""
    fake = FakeService()
    app = make_fake_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await service_ready(pilot)
        view = await fake.device(Ids.GATEWAY)
        screen = DeviceScreen(Ids.GATEWAY)
        mounting = app.push_screen(screen)
        screen.view = view
        screen._render_view()  # the answer, before a single widget of the screen is up
        await mounting
        await wait_for(
            pilot,
            lambda: "Clouds" in str(screen.query_one("#device-facts", Static).render()),
            what="the early answer drawn",
        )
        assert Ids.GATEWAY in str(screen.query_one("#device-title", Static).content)
    assert app.return_code in (None, 0)
